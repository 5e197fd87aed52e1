#include "repo/pack_writer.h"

#include "repo/format.h"

namespace reprise {

Status SealedPackWriter::Add(BlobType type, const Id& id, ByteView sealed, uint32_t raw_length) {
  builder_.Add(type, id, sealed, raw_length);
  if (builder_.size() >= repo_.config().pack_size) return Flush();
  return Status::Ok();
}

Status SealedPackWriter::Flush() {
  if (builder_.empty()) return Status::Ok();
  Id id = Id::Random();
  auto entries = builder_.entries();
  Bytes bytes = builder_.Finish(repo_.key().encryption);
  RETURN_IF_ERROR(repo_.storage().Put(PackKey(id), bytes));
  written_.push_back(IndexPack{.pack = id, .entries = std::move(entries)});
  builder_ = PackBuilder();
  packs_written_++;
  return Status::Ok();
}

std::vector<IndexPack> SealedPackWriter::TakeWritten() {
  std::vector<IndexPack> out;
  out.swap(written_);
  return out;
}

}  // namespace reprise
