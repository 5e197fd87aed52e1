#include "orchestrate/component_factory.h"

#include <filesystem>

#include "components/files/files_component.h"

namespace reprise {

Result<std::unique_ptr<Component>> MakeComponent(const ComponentSpec& spec) {
  switch (spec.kind) {
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
