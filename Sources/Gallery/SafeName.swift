import Foundation
import Store

/// File names derived from user data. Any id — with `/`, `..`, markup or any script — becomes a name
/// of lowercase ASCII letters, digits and `-`, made unique by a hash of the full id.
enum SafeName {
    /// A readable slug: ASCII-folded, lowercased, runs of other characters collapsed to `-`,
    /// at most 40 characters, "entry" when nothing readable is left.
    static func slug(_ id: String) -> String {
        let folded = id.applyingTransform(.toLatin, reverse: false)?
            .applyingTransform(.stripDiacritics, reverse: false) ?? id
        var slug = ""
        var pendingDash = false
        for scalar in folded.lowercased().unicodeScalars {
            if ("a"..."z").contains(scalar) || ("0"..."9").contains(scalar) {
                if pendingDash && !slug.isEmpty { slug += "-" }
                pendingDash = false
                slug.unicodeScalars.append(scalar)
                if slug.count >= 40 { break }
            } else {
                pendingDash = true
            }
        }
        return slug.isEmpty ? "entry" : slug
    }

    /// The page name of an entry id: `<slug>-<10 hex of sha256(id)>`.
    static func entryName(_ id: String) -> String {
        slug(id) + "-" + Hashing.sha256Hex(id).prefix(10)
    }

    /// Page names for a list of ids, in order; distinct even when ids repeat or hashes collide.
    static func entryNames(_ ids: [String]) -> [String] {
        var used = Set<String>()
        return ids.map { id in
            let base = entryName(id)
            var name = base
            var counter = 2
            while used.contains(name) {
                name = "\(base)-\(counter)"
                counter += 1
            }
            used.insert(name)
            return name
        }
    }

    /// A media file name: the content hash when it is plain hex, else the SHA-256 of the path;
    /// the extension is kept when it is short and alphanumeric.
    static func mediaName(_ file: MediaFile) -> String {
        let stem = contentHash(file) ?? String(Hashing.sha256Hex(file.path).prefix(32))
        let ext = URL(fileURLWithPath: file.path).pathExtension.lowercased()
        let safeExt = (1...8).contains(ext.count)
            && ext.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) })
        return safeExt ? "\(stem).\(ext)" : "\(stem).bin"
    }

    /// The file's content hash when it is usable as a name: 8–128 hex digits, lowercased.
    static func contentHash(_ file: MediaFile) -> String? {
        guard let hash = file.hash, (8...128).contains(hash.count),
              hash.unicodeScalars.allSatisfy({ $0.properties.isASCIIHexDigit }) else { return nil }
        return hash.lowercased()
    }
}
