import Foundation

/// Reads a dataset's JSON file into `Decodable` types, turning every failure into a ``CollectionError``
/// that names the file and either the line and column of a syntax error or the key path of a bad value.
enum JSONFile {
    /// Decodes `type` from the file at `url`.
    static func decode<T: Decodable>(_ type: T.Type, from url: URL) throws -> T {
        let data = try read(url)
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch let error as DecodingError {
            throw describe(error, data: data, file: url.path)
        }
    }

    /// The bytes of `url`, or an error naming it.
    static func read(_ url: URL) throws -> Data {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw CollectionError(file: url.path, "no such file")
        }
        guard !isDir.boolValue else { throw CollectionError(file: url.path, "is a folder, expected a JSON file") }
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw CollectionError(file: url.path, "cannot read the file")
        }
        return data
    }

    static func describe(_ error: DecodingError, data: Data, file: String) -> CollectionError {
        switch error {
        case .keyNotFound(let key, let ctx):
            return CollectionError(file: file, "missing key \"\(key.stringValue)\" in \(location(ctx.codingPath))")
        case .valueNotFound(let type, let ctx):
            return CollectionError(file: file, "\(location(ctx.codingPath)): expected \(words(for: type)), found null")
        case .typeMismatch(let type, let ctx):
            return CollectionError(file: file, "\(location(ctx.codingPath)): expected \(words(for: type))\(found(ctx.debugDescription))")
        case .dataCorrupted(let ctx):
            // The decoder gives no position for syntax errors; JSONSerialization reports a byte offset.
            if ctx.codingPath.isEmpty {
                if let syntax = syntaxError(in: data, file: file) { return syntax }
                // The decoder reports a number that does not fit its integer field this way, without a path.
                return CollectionError(file: file, "valid JSON, but a value could not be decoded (is a number with a fraction or out of range where an integer is expected?)")
            }
            return CollectionError(file: file, "\(location(ctx.codingPath)): \(ctx.debugDescription)")
        @unknown default:
            return CollectionError(file: file, "\(error)")
        }
    }

    /// Locates a syntax error as line and column, or nil when the data is valid JSON.
    static func syntaxError(in data: Data, file: String) -> CollectionError? {
        do {
            _ = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
            return nil
        } catch {
            let reason = ((error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String) ?? "\(error)"
            let offset = byteOffset(in: reason) ?? (reason.contains("end of file") ? data.count : nil)
            guard let offset else { return CollectionError(file: file, "malformed JSON: \(reason)") }
            let (line, column) = lineAndColumn(of: offset, in: data)
            return CollectionError(file: file, line: line, "malformed JSON at line \(line), column \(column): \(reason)")
        }
    }

    /// The byte offset in messages such as "Invalid value around character 19." or "... at 9.".
    static func byteOffset(in message: String) -> Int? {
        for marker in ["around character ", " at "] {
            guard let range = message.range(of: marker, options: .backwards) else { continue }
            let digits = message[range.upperBound...].prefix(while: \.isNumber)
            if let value = Int(digits) { return value }
        }
        return nil
    }

    /// 1-based line and column (in bytes) of a 0-based byte offset.
    static func lineAndColumn(of offset: Int, in data: Data) -> (line: Int, column: Int) {
        var line = 1
        var lineStart = 0
        let end = min(offset, data.count)
        var i = 0
        for byte in data.prefix(end) {
            if byte == UInt8(ascii: "\n") {
                line += 1
                lineStart = i + 1
            }
            i += 1
        }
        return (line, end - lineStart + 1)
    }

    /// "the top level" or a key path such as "annotations[3][0].story_id".
    static func location(_ path: [any CodingKey]) -> String {
        path.isEmpty ? "the top level" : NativeCollection.path(path)
    }

    static func words(for type: Any.Type) -> String {
        let name = String(describing: type)
        if name.hasPrefix("Dictionary") { return "an object" }
        if name.hasPrefix("Array") { return "a list" }
        if name == "String" { return "a string" }
        if name.hasPrefix("Int") || name.hasPrefix("UInt") { return "an integer" }
        if name == "Double" || name == "Float" { return "a number" }
        if name == "Bool" { return "true or false" }
        return name
    }

    /// ", found an array" from the decoder's "Expected to decode X but found an array instead."
    static func found(_ debugDescription: String) -> String {
        guard let range = debugDescription.range(of: "but found ") else { return "" }
        var rest = debugDescription[range.upperBound...]
        if rest.hasSuffix(" instead.") { rest = rest.dropLast(" instead.".count) }
        let noun = rest.replacingOccurrences(of: "an array", with: "a list").replacingOccurrences(of: "a dictionary", with: "an object")
        return ", found \(noun)"
    }
}

/// A dataset id written as a JSON string or an integer (VIST writes strings, other dumps write numbers).
struct FlexibleID: Decodable, Sendable, Hashable {
    var value: String

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            throw DecodingError.valueNotFound(String.self, .init(codingPath: decoder.codingPath, debugDescription: "null id"))
        }
        if let s = try? c.decode(String.self) { value = s; return }
        if let i = try? c.decode(Int64.self) { value = String(i); return }
        throw DecodingError.typeMismatch(String.self, .init(codingPath: decoder.codingPath,
            debugDescription: "Expected to decode a string or an integer id but found another value instead."))
    }
}
