#include "components/qdrant/qdrant_component.h"

namespace reprise {

namespace {

class QdrantComponent final : public Component {
 public:
  QdrantComponent(QdrantSpec spec, std::string api_key)
      : spec_(std::move(spec)), api_key_(std::move(api_key)) {}
  std::string kind() const override { return "qdrant"; }
  Result<nlohmann::json> Backup(BackupSink&) override {
    return Unimplemented("kind 'qdrant' is being built");
  }
  Status Restore(const nlohmann::json&, RestoreSource&, const RestoreOptions&) override {
    return Unimplemented("kind 'qdrant' is being built");
  }

 private:
  QdrantSpec spec_;
  std::string api_key_;
};

}  // namespace

std::unique_ptr<Component> MakeQdrantComponent(QdrantSpec spec, std::string api_key) {
  return std::make_unique<QdrantComponent>(std::move(spec), std::move(api_key));
}

}  // namespace reprise
