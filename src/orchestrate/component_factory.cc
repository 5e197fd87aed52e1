#include "orchestrate/component_factory.h"

#include <filesystem>

#include "components/files/files_component.h"
#include "components/postgres/physical.h"

namespace reprise {

Result<std::unique_ptr<Component>> MakeComponent(const ComponentSpec& spec,
                                                 const SecretLookup& secrets) {
  switch (spec.kind) {
    case ComponentKind::kPostgres: {
      std::string password;
      if (!spec.postgres.password.empty()) {
        if (!secrets) return FailedPrecondition("component '" + spec.name + "': no secrets");
        auto v = secrets(spec.postgres.password);
        if (!v.ok()) return v.status().WithContext("component '" + spec.name + "'");
        password = *v;
      }
      if (spec.postgres.mode == PostgresSpec::Mode::kPhysical)
        return std::unique_ptr<Component>(std::make_unique<PostgresPhysicalComponent>(
            PostgresPhysicalOptions{.conninfo = spec.postgres.connection,
                                    .password = password,
                                    .label = "reprise " + spec.name}));
      return Unimplemented("component '" + spec.name + "': logical mode is not wired yet");
    }
    case ComponentKind::kFiles:
      return std::unique_ptr<Component>(std::make_unique<FilesComponent>(
          FilesOptions{.paths = spec.files.paths,
                       .excludes = spec.files.excludes,
                       .one_file_system = spec.files.one_file_system}));
    default:
      return Unimplemented("component '" + spec.name + "': kind '" +
                           std::string(ComponentKindName(spec.kind)) +
                           "' is not built yet in this version of reprise");
  }
}

Result<std::unique_ptr<Component>> MakeComponentForRestore(const std::string& kind) {
  if (kind == "files") return std::unique_ptr<Component>(std::make_unique<FilesComponent>(FilesOptions{}));
  if (kind == "postgres")
    return std::unique_ptr<Component>(
        std::make_unique<PostgresPhysicalComponent>(PostgresPhysicalOptions{}));
  return Unimplemented("restoring components of kind '" + kind +
                       "' is not built yet in this version of reprise");
}

Result<std::unique_ptr<Component>> MakeFilesComponent(const std::vector<std::string>& paths,
                                                      const std::vector<std::string>& excludes) {
  if (paths.empty()) return InvalidArgument("no paths to back up");
  FilesOptions options;
  options.excludes = excludes;
  for (const auto& p : paths) {
    std::error_code ec;
    auto abs = std::filesystem::absolute(p, ec);
    if (ec) return InvalidArgument("path '" + p + "': " + ec.message());
    auto normal = abs.lexically_normal().string();
    if (normal.size() > 1 && normal.back() == '/') normal.pop_back();
    if (!std::filesystem::exists(std::filesystem::symlink_status(normal, ec)))
      return NotFound("path '" + p + "' does not exist");
    options.paths.push_back(normal);
  }
  return std::unique_ptr<Component>(std::make_unique<FilesComponent>(std::move(options)));
}

}  // namespace reprise
