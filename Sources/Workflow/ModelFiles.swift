import Foundation

/// The files of a model folder that enter its digest, found by following symbolic links: a symlinked
/// folder, or a folder of links to blobs (the Hugging Face cache's layout), must digest the weights
/// it points to, not the links.
enum ModelFiles {
    /// (path relative to `folder` with a leading `/`, file URL) of every regular file under `folder`,
    /// sorted by relative path. Hidden files and documentation (`*.md`) cannot change a result and stay out.
    static func list(_ folder: URL) -> [(relative: String, url: URL)] {
        var out: [(String, URL)] = []
        var visited = Set<String>()
        walk(folder, relative: "", into: &out, visited: &visited)
        return out.sorted { $0.0 < $1.0 }
    }

    private static func walk(_ dir: URL, relative: String, into out: inout [(String, URL)], visited: inout Set<String>) {
        // A link back up the tree would loop forever; each real folder is read once.
        guard visited.insert(dir.resolvingSymlinksInPath().path).inserted else { return }
        let fm = FileManager.default
        for name in ((try? fm.contentsOfDirectory(atPath: dir.path)) ?? []).sorted() where !name.hasPrefix(".") {
            let url = dir.appendingPathComponent(name)
            var isDir: ObjCBool = false   // fileExists follows links
            guard fm.fileExists(atPath: url.path, isDirectory: &isDir) else { continue }   // a dangling link
            if isDir.boolValue {
                walk(url, relative: relative + "/" + name, into: &out, visited: &visited)
            } else if url.pathExtension.lowercased() != "md" {
                out.append((relative + "/" + name, url))
            }
        }
    }
}
