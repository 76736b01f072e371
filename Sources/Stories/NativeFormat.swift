import Foundation

/// An error reading or writing a collection, naming the file and, where known, the line.
public struct CollectionError: Error, CustomStringConvertible, Sendable {
    public var file: String
    public var line: Int?
    public var message: String

    public init(file: String, line: Int? = nil, _ message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String {
        if let line { return "\(file):\(line): \(message)" }
        return "\(file): \(message)"
    }
}

/// The native collection format: a folder holding `collection.jsonl` (one ``Entry`` per line) and the
/// media it references by relative path (by convention under `images/`).
public enum NativeCollection {
    public static let fileName = "collection.jsonl"

    /// Reads a native collection folder (or a `.jsonl` file directly; its folder is then the root).
    ///
    /// Every image path must be relative and stay inside the root unless `allowOutsideRoot` is set.
    public static func read(at location: URL, allowOutsideRoot: Bool = false) throws -> StoryCollection {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: location.path, isDirectory: &isDir) else {
            throw CollectionError(file: location.path, "no such collection (expected a folder with \(fileName) or a .jsonl file)")
        }
        let file = isDir.boolValue ? location.appendingPathComponent(fileName) : location
        let root = isDir.boolValue ? location : location.deletingLastPathComponent()
        guard let data = FileManager.default.contents(atPath: file.path) else {
            throw CollectionError(file: file.path, "cannot read \(fileName)")
        }
        let decoder = JSONDecoder()
        var entries: [Entry] = []
        var seen: [String: Int] = [:]
        var lineNumber = 0
        for lineBytes in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            if lineBytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            let entry: Entry
            do {
                entry = try decoder.decode(Entry.self, from: Data(lineBytes))
            } catch {
                throw CollectionError(file: file.path, line: lineNumber, "invalid entry: \(describe(error))")
            }
            if let first = seen[entry.id] {
                throw CollectionError(file: file.path, line: lineNumber, "duplicate entry id \"\(entry.id)\" (first on line \(first))")
            }
            seen[entry.id] = lineNumber
            if entry.kind == .dialogue && entry.panels.count != 1 {
                throw CollectionError(file: file.path, line: lineNumber, "dialogue \"\(entry.id)\" must have exactly one panel, found \(entry.panels.count)")
            }
            if !allowOutsideRoot {
                for (i, panel) in entry.panels.enumerated() {
                    if let image = panel.image, !PathSafety.staysInside(relativePath: image) {
                        throw CollectionError(file: file.path, line: lineNumber,
                            "panel \(i + 1) of \"\(entry.id)\": image path \"\(image)\" leaves the collection folder (pass allowOutsideRoot to permit)")
                    }
                }
            }
            entries.append(entry)
        }
        let name = root.lastPathComponent
        return StoryCollection(name: name, root: root.standardizedFileURL, entries: entries)
    }

    /// Writes entries as `collection.jsonl` in `folder` (sorted keys, one entry per line, byte-stable).
    public static func write(_ entries: [Entry], to folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var out = Data()
        for entry in entries {
            out.append(try encoder.encode(entry))
            out.append(UInt8(ascii: "\n"))
        }
        try out.write(to: folder.appendingPathComponent(fileName), options: .atomic)
    }

    static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, let ctx):
            return "missing key \"\(path(ctx.codingPath + [key]))\""
        case DecodingError.typeMismatch(let type, let ctx):
            return "at \"\(path(ctx.codingPath))\": expected \(type)"
        case DecodingError.valueNotFound(let type, let ctx):
            return "at \"\(path(ctx.codingPath))\": expected \(type), found null"
        case DecodingError.dataCorrupted(let ctx):
            let under = (ctx.underlyingError as NSError?)?.localizedDescription ?? ctx.debugDescription
            return ctx.codingPath.isEmpty ? "not valid JSON (\(under))" : "at \"\(path(ctx.codingPath))\": \(ctx.debugDescription)"
        default:
            return "\(error)"
        }
    }

    static func path(_ keys: [any CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingCharacters(in: CharacterSet(charactersIn: "."))
    }
}

/// Checks that user-supplied paths stay inside their root folder.
public enum PathSafety {
    /// True when `relativePath` is relative and never climbs above its starting folder.
    public static func staysInside(relativePath: String) -> Bool {
        if relativePath.hasPrefix("/") || relativePath.hasPrefix("~") || relativePath.isEmpty { return false }
        var depth = 0
        for component in relativePath.split(separator: "/", omittingEmptySubsequences: true) {
            if component == ".." { depth -= 1; if depth < 0 { return false } }
            else if component != "." { depth += 1 }
        }
        return true
    }

    /// Resolves `relativePath` against `root`, refusing paths that leave it unless `allowOutside`.
    public static func resolve(_ relativePath: String, in root: URL, allowOutside: Bool = false) throws -> URL {
        if relativePath.hasPrefix("/") {
            guard allowOutside else { throw PathError(path: relativePath, root: root.path) }
            return URL(fileURLWithPath: relativePath).standardizedFileURL
        }
        guard allowOutside || staysInside(relativePath: relativePath) else {
            throw PathError(path: relativePath, root: root.path)
        }
        return root.appendingPathComponent(relativePath).standardizedFileURL
    }
}

/// A path that escapes its root folder.
public struct PathError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var root: String
    public var description: String { "path \"\(path)\" leaves its root folder \(root)" }
}
