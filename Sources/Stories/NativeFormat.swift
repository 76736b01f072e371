import Foundation

/// The one error type of Stories: a collection, importer option or path the code cannot use, located by
/// file (or folder) and line where there is one.
public struct CollectionError: Error, CustomStringConvertible, Sendable {
    public var file: String?
    public var line: Int?
    public var message: String

    public init(file: String, line: Int? = nil, _ message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    /// An importer option (`collection: {importer: KIND, …}`) the importer cannot use.
    public init(importer kind: String, _ message: String) {
        self.message = "collection (\(kind)): \(message)"
    }

    public var description: String {
        guard let file else { return message }
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
        let bytes = [UInt8](data)
        // Line ranges first, then parse in parallel: large collections spend most of a no-op rerun here.
        var lines: [Range<Int>] = []
        var lineStart = 0
        for (i, b) in bytes.enumerated() where b == UInt8(ascii: "\n") {
            lines.append(lineStart..<i)
            lineStart = i + 1
        }
        if lineStart < bytes.count { lines.append(lineStart..<bytes.count) }
        let lineRanges = lines
        var parsed = [Result<Entry, CollectionError>?](repeating: nil, count: lines.count)
        let chunks = max(1, min(ProcessInfo.processInfo.activeProcessorCount, lines.count / 256))
        bytes.withUnsafeBufferPointer { input in
            let buffer = UncheckedInput(input)
            parsed.withUnsafeMutableBufferPointer { out in
                let out = UncheckedBuffer(out)
                DispatchQueue.concurrentPerform(iterations: chunks) { c in
                    for l in stride(from: c, to: lineRanges.count, by: chunks) {
                        let line = UnsafeBufferPointer(rebasing: buffer.pointer[lineRanges[l]])
                        if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
                        out.pointer[l] = parseLine(line, number: l + 1, file: file.path, allowOutsideRoot: allowOutsideRoot)
                    }
                }
            }
        }
        var entries: [Entry] = []
        entries.reserveCapacity(lines.count)
        var seen: [String: Int] = [:]
        for (l, result) in parsed.enumerated() {
            guard let result else { continue }
            let entry = try result.get()
            if let first = seen[entry.id] {
                throw CollectionError(file: file.path, line: l + 1, "duplicate entry id \"\(entry.id)\" (first on line \(first))")
            }
            seen[entry.id] = l + 1
            entries.append(entry)
        }
        let name = root.lastPathComponent
        return StoryCollection(name: name, root: root.standardizedFileURL, entries: entries)
    }

    static func parseLine(_ line: UnsafeBufferPointer<UInt8>, number: Int, file: String,
                          allowOutsideRoot: Bool) -> Result<Entry, CollectionError> {
        let entry: Entry
        do {
            // A direct parser, not JSONDecoder: decoding free-form metadata through Codable throws an error
            // per failed type probe and is an order of magnitude slower on large collections.
            entry = try EntryJSON.entry(try JSONScanner.parse(line))
        } catch let error as EntryJSON.Problem {
            return .failure(CollectionError(file: file, line: number, "invalid entry: \(error.message)"))
        } catch let error as JSONScanner.Failure {
            return .failure(CollectionError(file: file, line: number, "invalid entry: not valid JSON (\(error.message) at column \(error.offset + 1))"))
        } catch {
            return .failure(CollectionError(file: file, line: number, "invalid entry: \(error)"))
        }
        if entry.kind == .dialogue && entry.panels.count != 1 {
            return .failure(CollectionError(file: file, line: number, "dialogue \"\(entry.id)\" must have exactly one panel, found \(entry.panels.count)"))
        }
        if !allowOutsideRoot {
            for (i, panel) in entry.panels.enumerated() {
                if let image = panel.image, !PathSafety.staysInside(relativePath: image) {
                    return .failure(CollectionError(file: file, line: number,
                        "panel \(i + 1) of \"\(entry.id)\": image path \"\(image)\" leaves the collection folder (set allow_outside_root: true under the workflow's collection: to permit)"))
                }
            }
        }
        return .success(entry)
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

    /// Resolves `relativePath` against `root` (as ``UserPath`` does), refusing paths that leave it unless
    /// `allowOutside`.
    public static func resolve(_ relativePath: String, in root: URL, allowOutside: Bool = false) throws -> URL {
        guard allowOutside || staysInside(relativePath: relativePath) else {
            throw CollectionError(file: root.path, "path \"\(relativePath)\" leaves its root folder")
        }
        return UserPath.resolve(relativePath, relativeTo: root)
    }
}

/// Builds entries from parsed JSON, with messages in the same words as the Codable path.
enum EntryJSON {
    struct Problem: Error { var message: String }

    static func entry(_ value: JSONValue) throws -> Entry {
        guard case .object(let o) = value else { throw Problem(message: "expected an object") }
        let id = try string(o, "id", at: "")
        guard let kind = Entry.Kind(rawValue: try string(o, "kind", at: "")) else {
            throw Problem(message: "at \"kind\": expected \"story\" or \"dialogue\"")
        }
        guard let rawPanels = o["panels"] else { throw Problem(message: "missing key \"panels\"") }
        guard case .array(let panelList) = rawPanels else { throw Problem(message: "at \"panels\": expected a list") }
        var panels: [Panel] = []
        panels.reserveCapacity(panelList.count)
        for (i, raw) in panelList.enumerated() {
            guard case .object(let p) = raw else { throw Problem(message: "at \"panels[\(i)]\": expected an object") }
            let image: String?
            switch p["image"] {
            case nil, .null?: image = nil
            case .string(let s)?: image = s
            default: throw Problem(message: "at \"panels[\(i)].image\": expected String")
            }
            panels.append(Panel(image: image, text: try string(p, "text", at: "panels[\(i)]."), metadata: p["metadata"]))
        }
        var rounds: [DialogueRound] = []
        if let raw = o["rounds"] {
            guard case .array(let list) = raw else { throw Problem(message: "at \"rounds\": expected a list") }
            for (i, r) in list.enumerated() {
                guard case .object(let d) = r else { throw Problem(message: "at \"rounds[\(i)]\": expected an object") }
                rounds.append(DialogueRound(question: try string(d, "question", at: "rounds[\(i)]."),
                                            answer: try string(d, "answer", at: "rounds[\(i)].")))
            }
        }
        let warnings = o["warnings"]?.arrayValue?.compactMap(\.stringValue) ?? []
        return Entry(id: id, kind: kind, panels: panels, rounds: rounds, metadata: o["metadata"], warnings: warnings)
    }

    static func string(_ o: [String: JSONValue], _ key: String, at path: String) throws -> String {
        guard let v = o[key] else { throw Problem(message: "missing key \"\(path)\(key)\"") }
        guard case .string(let s) = v else { throw Problem(message: "at \"\(path)\(key)\": expected String") }
        return s
    }
}

/// Lets concurrent workers write disjoint slots of one buffer.
struct UncheckedBuffer<T>: @unchecked Sendable {
    let pointer: UnsafeMutableBufferPointer<T>
    init(_ pointer: UnsafeMutableBufferPointer<T>) { self.pointer = pointer }
}

/// Lets concurrent workers read one buffer.
struct UncheckedInput<T>: @unchecked Sendable {
    let pointer: UnsafeBufferPointer<T>
    init(_ pointer: UnsafeBufferPointer<T>) { self.pointer = pointer }
}
