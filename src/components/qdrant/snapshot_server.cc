#include "components/qdrant/snapshot_server.h"

#include <httplib.h>
#include <openssl/rand.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "components/qdrant/qdrant_client.h"

namespace reprise::qdrant {

Result<std::unique_ptr<SnapshotServer>> SnapshotServer::Start(const std::string& address,
                                                              const std::string& file,
                                                              const std::string& name) {
  std::string host = address.empty() ? "127.0.0.1" : address;
  int port = 0;
  auto colon = host.rfind(':');
  if (colon != std::string::npos && host.find(']') == std::string::npos) {
    try {
      port = std::stoi(host.substr(colon + 1));
    } catch (...) {
      return InvalidArgument("serve address '" + address + "' is not host[:port]");
    }
    host = host.substr(0, colon);
  }
  unsigned char rnd[16];
  if (RAND_bytes(rnd, sizeof rnd) != 1) return Internal("no random bytes for a snapshot URL");
  std::string token;
  for (unsigned char b : rnd) {
    static const char* d = "0123456789abcdef";
    token.push_back(d[b >> 4]);
    token.push_back(d[b & 15]);
  }
  std::error_code ec;
  auto size = std::filesystem::file_size(file, ec);
  if (ec) return IOError("cannot serve '" + file + "': " + ec.message());

  std::unique_ptr<SnapshotServer> s(new SnapshotServer());
  s->server_ = std::make_unique<httplib::Server>();
  s->downloads_ = std::make_shared<std::atomic<int>>(0);
  std::string path = "/snapshots/" + token + "/" + UrlEncode(name);
  std::string route = "/snapshots/" + token + "/.*";
  auto downloads = s->downloads_;
  s->server_->Get(route, [file, size, downloads](const httplib::Request&, httplib::Response& res) {
    auto in = std::make_shared<std::ifstream>(file, std::ios::binary);
    if (!*in) {
      res.status = 500;
      return;
    }
    downloads->fetch_add(1);
    res.set_content_provider(
        static_cast<size_t>(size), "application/octet-stream",
        [in](size_t offset, size_t length, httplib::DataSink& sink) {
          std::vector<char> buf(std::min<size_t>(length, 1 << 16));
          in->seekg(static_cast<std::streamoff>(offset));
          in->read(buf.data(), static_cast<std::streamsize>(buf.size()));
          if (in->gcount() <= 0) return false;
          sink.write(buf.data(), static_cast<size_t>(in->gcount()));
          return true;
        });
  });
  if (port == 0) {
    port = s->server_->bind_to_any_port(host);
    if (port <= 0) return Unavailable("cannot listen on '" + host + "' to serve the snapshot");
  } else if (!s->server_->bind_to_port(host, port)) {
    return Unavailable("cannot listen on '" + host + ":" + std::to_string(port) +
                       "' to serve the snapshot; HINT: is the port in use?");
  }
  std::string shown = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  s->url_ = "http://" + shown + ":" + std::to_string(port) + path;
  httplib::Server* srv = s->server_.get();
  s->thread_ = std::thread([srv] { srv->listen_after_bind(); });
  while (!srv->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return s;
}

SnapshotServer::~SnapshotServer() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

int SnapshotServer::downloads() const { return downloads_ ? downloads_->load() : 0; }

}  // namespace reprise::qdrant
