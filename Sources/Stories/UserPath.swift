import Foundation

/// The one way a path the user wrote becomes a file URL: every workflow path key (collection `path`,
/// `annotations`, `images`, model `path`, `store`) and every command-line folder (`--store`, `--output`).
public enum UserPath {
    /// `~` and `~user` expand to the home folder, an absolute path stays as written, and a relative path
    /// is taken relative to `base` (the workflow file's folder for keys in the file, the current directory
    /// on the command line).
    ///
    /// `..` is applied the way the kernel applies it: after a symbolic link it climbs from the link's
    /// target, not from the folder that holds the link (a purely textual clean-up would point elsewhere).
    /// Links that no `..` follows are kept as written, so paths read back as the user wrote them.
    public static func resolve(_ path: String, relativeTo base: URL) -> URL {
        let expanded = path.hasPrefix("~") ? expandingTilde(path) : path
        let start = expanded.hasPrefix("/") ? URL(fileURLWithPath: "/") : base.standardizedFileURL
        var url = start
        for component in expanded.split(separator: "/", omittingEmptySubsequences: true) {
            switch component {
            case ".": continue
            case "..": url = url.resolvingSymlinksInPath().deletingLastPathComponent()
            default: url.appendPathComponent(String(component))
            }
        }
        return url.standardizedFileURL
    }

    /// `~` and `~/…` read `$HOME` as a shell does (Foundation alone asks the password database);
    /// `~user/…` is that user's home.
    static func expandingTilde(_ path: String) -> String {
        if path == "~" || path.hasPrefix("~/"), let home = ProcessInfo.processInfo.environment["HOME"], !home.isEmpty {
            return home + path.dropFirst()
        }
        return (path as NSString).expandingTildeInPath
    }

    /// A command-line path, relative to the current directory.
    public static func commandLine(_ path: String) -> URL {
        resolve(path, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true))
    }
}
