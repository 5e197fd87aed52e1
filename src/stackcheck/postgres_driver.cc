// kind postgres: `each` streams the first column of the query's rows (single-row mode, so a
// big table is never held in memory; NULLs are skipped); `exists_in` runs the query as a
// prepared statement with the value as $1, a batch of values per round trip (pipeline mode).
// Both sessions are read-only (default_transaction_read_only): a check never writes.
#include <libpq-fe.h>

#include <algorithm>
#include <deque>

#include "pg/connection.h"
#include "stackcheck/drivers.h"

namespace reprise::stackcheck {

namespace {

constexpr char kStatement[] = "reprise_verify_exists";

Result<std::unique_ptr<pg::Connection>> Connect(const Endpoint& e) {
  // libpq's connect_timeout (10 s unless the conninfo says otherwise) bounds the connect.
  auto conn = pg::Connection::Open(e.address, false, e.password);
  if (!conn.ok()) return conn.status().WithContext("component '" + e.component + "'");
  auto set = (*conn)->Query("SET default_transaction_read_only = on");
  if (!set.ok()) return set.status().WithContext("component '" + e.component + "'");
  return conn;
}

class PostgresSource final : public ValueSource {
 public:
  PostgresSource(std::unique_ptr<pg::Connection> conn, std::string sql, std::string component)
      : conn_(std::move(conn)), sql_(std::move(sql)), component_(std::move(component)) {}

  Status Each(size_t batch_size, const Sink& sink) override {
    PGconn* c = conn_->raw();
    if (!PQsendQuery(c, sql_.c_str()) || !PQsetSingleRowMode(c)) {
      return pg::ResultError(c, nullptr, "query of component '" + component_ + "'");
    }
    std::vector<std::string> batch;
    Status failed;
    bool stopped = false;
    while (PGresult* raw = PQgetResult(c)) {
      pg::PgResultPtr res(raw);
      if (stopped) continue;  // drain what is left after an error
      ExecStatusType st = PQresultStatus(raw);
      if (st == PGRES_SINGLE_TUPLE) {
        if (PQnfields(raw) < 1) {
          failed = InvalidArgument("the query of component '" + component_ +
                                   "' returns no column: HINT: select the values to check "
                                   "first, e.g. 'select doc_id from chunks'");
          stopped = true;
          continue;
        }
        if (PQgetisnull(raw, 0, 0)) continue;
        batch.emplace_back(PQgetvalue(raw, 0, 0), PQgetlength(raw, 0, 0));
        if (batch.size() >= batch_size) {
          Status s = sink(std::move(batch));
          batch.clear();
          if (!s.ok()) {
            failed = s;
            stopped = true;
            // Stop the server sending the rest; what is already on the way is drained.
            if (PGcancel* cancel = PQgetCancel(c)) {
              char err[256];
              PQcancel(cancel, err, sizeof err);
              PQfreeCancel(cancel);
            }
          }
        }
      } else if (st == PGRES_TUPLES_OK) {
        // The end of the rows.
      } else if (st == PGRES_COMMAND_OK) {
        failed = InvalidArgument("the query of component '" + component_ +
                                 "' returns no rows to check (it is not a select): HINT: "
                                 "give a query such as 'select doc_id from chunks'");
        stopped = true;
      } else {
        failed = pg::ResultError(c, raw, "query of component '" + component_ + "'");
        stopped = true;
      }
    }
    if (!failed.ok()) return failed;
    if (!batch.empty()) return sink(std::move(batch));
    return Status::Ok();
  }

 private:
  std::unique_ptr<pg::Connection> conn_;
  std::string sql_, component_;
};

class PostgresTest final : public MembershipTest {
 public:
  PostgresTest(std::unique_ptr<pg::Connection> conn, std::string component)
      : conn_(std::move(conn)), component_(std::move(component)) {}

  Result<std::vector<bool>> Find(const std::vector<std::string>& values) override {
    std::vector<bool> found(values.size(), false);
    // Indices still to ask: a failed statement aborts the rest of its pipeline, which is
    // then sent again.
    std::deque<size_t> pending;
    for (size_t i = 0; i < values.size(); ++i) pending.push_back(i);
    while (!pending.empty()) {
      ASSIGN_OR_RETURN(std::vector<size_t> retry, Round(values, pending, found));
      pending.assign(retry.begin(), retry.end());
    }
    return found;
  }

 private:
  // One pipeline of (at most kPipeline of) the pending values.
  Result<std::vector<size_t>> Round(const std::vector<std::string>& values,
                                    std::deque<size_t>& pending, std::vector<bool>& found) {
    constexpr size_t kPipeline = 256;
    PGconn* c = conn_->raw();
    std::vector<size_t> sent;
    std::vector<size_t> retry;
    if (!PQenterPipelineMode(c)) return pg::ResultError(c, nullptr, "pipeline");
    while (!pending.empty() && sent.size() < kPipeline) {
      size_t i = pending.front();
      pending.pop_front();
      const char* param = values[i].c_str();
      int length = static_cast<int>(values[i].size());
      int format = 0;
      if (!PQsendQueryPrepared(c, kStatement, 1, &param, &length, &format, 0)) {
        Status s = pg::ResultError(c, nullptr, "query of component '" + component_ + "'");
        PQexitPipelineMode(c);
        return s;
      }
      sent.push_back(i);
    }
    // Anything not sent this round goes in a later one.
    retry.assign(pending.begin(), pending.end());
    pending.clear();
    if (!PQpipelineSync(c)) return pg::ResultError(c, nullptr, "pipeline sync");
    Status failed;
    for (size_t i : sent) {
      PGresult* raw = PQgetResult(c);
      if (!raw) {
        return pg::ResultError(c, nullptr, "query of component '" + component_ + "'");
      }
      pg::PgResultPtr res(raw);
      ExecStatusType st = PQresultStatus(raw);
      if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        found[i] = PQntuples(raw) > 0;
      } else if (st == PGRES_PIPELINE_ABORTED) {
        retry.push_back(i);
      } else {
        const char* state = PQresultErrorField(raw, PG_DIAG_SQLSTATE);
        // Class 22 (data exception: "abc" for an integer, out of range): the value cannot be
        // in the table, so it is not found.
        if (state && std::string_view(state).starts_with("22")) {
          found[i] = false;
        } else if (failed.ok()) {
          failed = pg::ResultError(c, raw, "query of component '" + component_ + "'");
        }
      }
      // Each statement's results end with a null.
      while (PGresult* extra = PQgetResult(c)) PQclear(extra);
    }
    PGresult* sync = PQgetResult(c);
    bool synced = sync && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
    if (sync) PQclear(sync);
    if (!PQexitPipelineMode(c) && failed.ok()) {
      failed = pg::ResultError(c, nullptr, "pipeline exit");
    }
    if (!failed.ok()) return failed;
    if (!synced) return Internal("component '" + component_ + "': pipeline out of step");
    // Re-sent values first, in order.
    std::sort(retry.begin(), retry.end());
    return retry;
  }

  std::unique_ptr<pg::Connection> conn_;
  std::string component_;
};

}  // namespace

Result<std::unique_ptr<ValueSource>> OpenPostgresSource(const Endpoint& e,
                                                        const ConsistencyCheck::Side& side) {
  ASSIGN_OR_RETURN(std::unique_ptr<pg::Connection> conn, Connect(e));
  return std::unique_ptr<ValueSource>(
      std::make_unique<PostgresSource>(std::move(conn), side.query, e.component));
}

Result<std::unique_ptr<MembershipTest>> OpenPostgresTest(const Endpoint& e,
                                                         const ConsistencyCheck::Side& side) {
  if (side.query.find("$1") == std::string::npos) {
    return InvalidArgument("the exists_in query of component '" + e.component +
                           "' has no $1: HINT: write it with the value as $1, e.g. "
                           "'select 1 from documents where id = $1'");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<pg::Connection> conn, Connect(e));
  PGconn* c = conn->raw();
  // The value is text; the server infers $1's type from the query.
  pg::PgResultPtr res(PQprepare(c, kStatement, side.query.c_str(), 1, nullptr));
  if (!res || PQresultStatus(res.get()) != PGRES_COMMAND_OK) {
    return pg::ResultError(c, res.get(), "preparing the exists_in query of component '" +
                                             e.component + "'");
  }
  return std::unique_ptr<MembershipTest>(
      std::make_unique<PostgresTest>(std::move(conn), e.component));
}

}  // namespace reprise::stackcheck
