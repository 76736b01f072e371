import Foundation
import Store

/// A fresh store in a temp folder.
func scratchStore() throws -> ProjectStore {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("storyloom-store-\(UUID().uuidString)")
    return try ProjectStore(root: root)
}

/// A successful result with JSON outputs, optionally a vector and media references.
func result(_ fingerprint: String, outputs: String = #"{"text":"hi"}"#, vectors: [String: [Float]] = [:],
            media: [(hash: String, ext: String)] = []) -> StoredResult {
    StoredResult(fingerprint: fingerprint, stepKind: "template", status: .ok, outputs: Data(outputs.utf8), error: nil,
                 seconds: 0.5, vectors: vectors, modelDigest: vectors.isEmpty ? nil : "digest", media: media)
}

func state(_ step: String, _ item: String, _ fingerprint: String, ok: Bool = true) -> ItemState {
    ItemState(stepID: step, itemID: item, fingerprint: fingerprint, status: ok ? .ok : .failed,
              components: Data(#"{"param":1}"#.utf8))
}
