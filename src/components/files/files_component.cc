// The `files` component: Backup walks the roots (walk.cc, file_reader.cc), Restore recreates
// the entries (restore.cc). Entry encoding: metadata.cc.
//
// ## files manifest (for docs/repository-format.md)
//
// One JSON object per filesystem object, in walk order: roots sorted by bytes; for each root
// first the directories above it (once), then the root and everything below it, depth first,
// a directory before its children, children sorted by the raw bytes of their names. So a
// parent always comes before its children and equal trees give equal manifests.
//
//   "path"      absolute source path without the leading '/' ("" for "/"), when its bytes are
//               valid UTF-8; otherwise "path_b64": the raw bytes in base64 (RFC 4648, padded).
//               Exactly one of the two is present.
//   "type"      "file" | "dir" | "symlink" | "fifo" | "chardev" | "blockdev" | "hardlink".
//               Sockets are not saved (the backup warns about each).
//   "mode"      permission bits incl. setuid/setgid/sticky (st_mode & 07777), an integer.
//   "uid","gid" numeric owner, integers. Restore uses these (not the names).
//   "user","group"  owner names when the ids have one (absent otherwise).
//   "mtime_ns"  modification time in nanoseconds since the epoch (negative before 1970).
//   type "file":
//     "size"     apparent size in bytes.
//     "nlink"    link count, only when > 1 (the first name of a hard-linked inode).
//     "ctime_ns", "ino"  inode change time and number at backup time: the next backup reuses
//                the content of a file whose size, mtime_ns, ctime_ns and ino are unchanged
//                (when all its chunks are still stored) instead of reading it. Restore
//                ignores both.
//     "extents"  only for a sparse file: [[offset, length], ...], the data regions in
//                increasing offset order; everything else is a hole.
//     "contents" (written by the engine) a list of content lists: exactly one for a file
//                without "extents" (all its bytes; an empty file has [[]]), or one per extent,
//                in order. Absent when there are none (a sparse file with no data at all).
//   type "symlink": "target" (or "target_b64" when not UTF-8): the raw link target.
//   type "chardev" / "blockdev": "rdev": the device number (st_rdev as the kernel encodes it).
//   type "hardlink": a later name of a regular file seen before with st_nlink > 1, keyed by
//     (st_dev, st_ino); carries only "path" (or "path_b64"), "type" and "link" (or
//     "link_b64"): the path of the first name, which is an earlier "file" entry.
//     No mode, owner or time: they are the inode's, stored with the first name.
//   Dirs, fifos and hard links have no "size" and no "contents".
//
// Info returned by Backup (kept in the point):
//   {"roots": ["/abs/root", ...], "files": N, "dirs": N, "symlinks": N, "hardlinks": N,
//    "special": N, "bytes": N, "skipped": N, "unchanged": N}
// "roots" are the normalized roots (see NormalizeRoots in walk.h); "bytes" counts data bytes
// read (holes excluded); "skipped" counts objects not saved, each one reported with a warning.
#include "components/files/files_component.h"

#include "components/files/restore.h"
#include "components/files/walk.h"

namespace reprise {

FilesComponent::FilesComponent(FilesOptions options) : options_(std::move(options)) {}

Result<nlohmann::json> FilesComponent::Backup(BackupSink& sink) {
  ASSIGN_OR_RETURN(std::vector<std::string> roots, files::NormalizeRoots(options_.paths));
  files::TreeWalker walker(options_, sink);
  for (const std::string& root : roots) RETURN_IF_ERROR(walker.SaveRoot(root));
  walker.Finish();
  const files::WalkCounts& n = walker.counts();
  return nlohmann::json{{"roots", roots},
                        {"files", n.files.load()},
                        {"dirs", n.dirs.load()},
                        {"symlinks", n.symlinks.load()},
                        {"hardlinks", n.hardlinks.load()},
                        {"special", n.special.load()},
                        {"bytes", n.bytes.load()},
                        {"skipped", n.skipped.load()},
                        {"unchanged", n.unchanged.load()}};
}

Status FilesComponent::Restore(const nlohmann::json& info, RestoreSource& source,
                               const RestoreOptions& options) {
  files::TreeRestorer restorer(source, options);
  return restorer.Run();
}

}  // namespace reprise
