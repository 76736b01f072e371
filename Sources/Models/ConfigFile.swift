import Foundation

/// How every model config in Models is read — the one place. A config is a `Decodable` struct with
/// `CodingKeys` to the Hugging Face / diffusers names; its `init(from:)` reads each key with its default
/// (`try c.value(.hiddenSize, default: d.hiddenSize)`: absent or null takes the default, as
/// `from_pretrained` / `from_config` do) and checks what it cannot support; decoding goes through here
/// so that every error names the file and the key.
enum ConfigFile {
    static func read<T: Decodable>(_ type: T.Type, from url: URL) throws -> T {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ModelError(file: url, "cannot read: \(error.localizedDescription)")
        }
        return try decode(type, from: data, source: url.path)
    }

    static func decode<T: Decodable>(_ type: T.Type, from data: Data, source: String) throws -> T {
        func key(_ c: DecodingError.Context) -> String? {
            let path = c.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? nil : path
        }
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch let error as ModelError {
            throw error
        } catch let DecodingError.typeMismatch(expected, c) {
            throw ModelError(file: source, field: key(c), "expected \(describe(expected))")
        } catch let DecodingError.valueNotFound(expected, c) {
            throw ModelError(file: source, field: key(c), "expected \(describe(expected)), got null")
        } catch let DecodingError.keyNotFound(missing, c) {
            throw ModelError(file: source, field: key(c), "missing key \"\(missing.stringValue)\"")
        } catch let DecodingError.dataCorrupted(c) {
            let k = key(c)
            throw ModelError(file: source, field: k, k == nil ? "not valid JSON: \(c.debugDescription)" : c.debugDescription)
        } catch {
            throw ModelError(file: source, "cannot decode: \(error)")
        }
    }

    static func describe(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type: return "an integer"
        case is Float.Type, is Double.Type: return "a number"
        case is Bool.Type: return "true or false"
        case is String.Type: return "a string"
        case is [Int].Type: return "a list of integers"
        case is [String].Type: return "a list of strings"
        case is [Double].Type: return "a list of numbers"
        default: return "\(type)"
        }
    }
}

/// A key named at run time: for checks of keys a config does not store (`requireNull("class_embed_type")`).
struct ConfigKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ name: String) { stringValue = name }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension KeyedDecodingContainer {
    /// The value at `key`, or `fallback` when the key is absent or null.
    func value<T: Decodable>(_ key: Key, default fallback: @autoclosure () -> T) throws -> T {
        try decodeIfPresent(T.self, forKey: key) ?? fallback()
    }

    /// An optional value whose absence means `fallback` but whose explicit null means nil
    /// (transformers' `projection_dim`, `pad_token_id`).
    func nullable<T: Decodable>(_ key: Key, default fallback: T?) throws -> T? {
        contains(key) ? try decodeIfPresent(T.self, forKey: key) : fallback
    }

    /// An integer or a per-block list of integers (e.g. `attention_head_dim`), expanded to `count`.
    func intOrList(_ key: Key, default fallback: Int, count: Int) throws -> [Int] {
        guard contains(key), try !decodeNil(forKey: key) else { return Array(repeating: fallback, count: count) }
        if let n = try? decode(Int.self, forKey: key) { return Array(repeating: n, count: count) }
        guard let list = try? decode([Int].self, forKey: key) else { throw invalid(key, "expected an integer or a list of integers") }
        guard list.count == count else { throw invalid(key, "has \(list.count) entries for \(count) blocks") }
        return list
    }

    /// The error for an unusable value at `key`; ``ConfigFile`` adds the file.
    func invalid(_ key: Key, _ message: String) -> DecodingError {
        .dataCorrupted(.init(codingPath: codingPath + [key], debugDescription: message))
    }
}

extension KeyedDecodingContainer where Key == ConfigKey {
    func isSet(_ name: String) -> Bool {
        contains(ConfigKey(name)) && (try? decodeNil(forKey: ConfigKey(name))) == false
    }

    /// Throws unless `name` is absent or null.
    func requireNull(_ name: String) throws {
        guard !isSet(name) else { throw invalid(ConfigKey(name), "is not supported (only null)") }
    }

    /// Throws unless `name` is absent, null or false.
    func requireFalse(_ name: String) throws {
        guard try !value(ConfigKey(name), default: false) else { throw invalid(ConfigKey(name), "true is not supported") }
    }

    /// Throws unless `name` is absent, null or one of `allowed`.
    func require(_ name: String, oneOf allowed: [String]) throws {
        let v = try value(ConfigKey(name), default: allowed[0])
        guard allowed.contains(v) else { throw invalid(ConfigKey(name), "'\(v)' is not supported (\(allowed.joined(separator: ", ")))") }
    }

    /// Throws unless `name` is absent, null or one of `allowed`.
    func require(_ name: String, oneOf allowed: [Int]) throws {
        let v = try value(ConfigKey(name), default: allowed[0])
        guard allowed.contains(v) else { throw invalid(ConfigKey(name), "\(v) is not supported (\(allowed.map(String.init).joined(separator: ", ")))") }
    }
}
