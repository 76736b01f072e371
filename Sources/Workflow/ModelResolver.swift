import Foundation
import Stories
import Store

/// Resolves the `models:` entries of a workflow to folders and digests.
public enum ModelResolver {
    /// Digest = SHA-256 over every file's relative path and content hash (content hashes are cached by
    /// size and mtime, so an unchanged multi-GB checkpoint is not re-read on every plan); ``ModelFiles``
    /// says which files count.
    public static func resolve(_ spec: WorkflowSpec, store: any ResultStore) throws -> [String: ResolvedModel] {
        var out: [String: ResolvedModel] = [:]
        var errors: [WorkflowError] = []
        let used = Set(spec.steps.compactMap(\.model))
        for (name, model) in spec.models.sorted(by: { $0.key < $1.key }) where used.contains(name) {
            let folder = UserPath.resolve(model.path, relativeTo: spec.folder)
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDir) else {
                errors.append(WorkflowError(model.location, "model \"\(name)\" (\(model.kind)): folder \(folder.path) does not exist"))
                continue
            }
            // A single file (one checkpoint) is listed with an empty relative path.
            let files: [(relative: String, url: URL)] = isDir.boolValue ? ModelFiles.list(folder) : [("", folder)]
            let hashes = try store.fileHashes(for: files.map(\.url))
            let listing = files.map { "\($0.relative):\(hashes[$0.url.path] ?? "?")" }.joined(separator: "\n")
            out[name] = ResolvedModel(name: name, kind: model.kind, folder: folder,
                                      digest: Hashing.sha256Hex("\(model.kind)\n\(listing)"))
        }
        if !errors.isEmpty { throw WorkflowErrors(errors: errors) }
        return out
    }
}
