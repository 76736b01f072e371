import Foundation
import Stories

/// A step kind's params as one `Codable` struct: each param is a ``Param`` property that holds its name,
/// type, default and help in one place (as swift-argument-parser's options do). Validation, `storyloom
/// steps`, the README's step table and the fingerprint's canonical params all derive from it, and the
/// runner receives the decoded struct.
///
/// ```swift
/// struct Params: StepParams {
///     @Param(help: "output width in pixels", min: 1, max: 8192) var width = 128
/// }
/// ```
/// A property `maxTokens` is the workflow param `max_tokens`.
public protocol StepParams: Codable, Sendable {
    /// The defaults.
    init()
}

extension StepParams {
    /// The declared params, in declaration order, read off a default instance.
    public static var specs: [ParamSpec] {
        Mirror(reflecting: Self()).children.compactMap { child in
            guard let label = child.label, let param = child.value as? any DeclaredParam else { return nil }
            return param.spec(name: ParamName.snakeCase(label.hasPrefix("_") ? String(label.dropFirst()) : label))
        }
    }

    /// Decodes validated params (defaults filled in for what the workflow leaves out).
    public static func decode(_ values: [String: JSONValue]) throws -> Self {
        var complete: [String: JSONValue] = [:]
        for spec in specs { if let d = spec.defaultValue { complete[spec.name] = d } }
        for (k, v) in values { complete[k] = v }
        do {
            return try ParamCoding.decoder.decode(Self.self, from: ParamCoding.encoder.encode(complete))
        } catch {
            throw StepError("params \(Explainer.show(.object(complete))): \(ParamCoding.describe(error))")
        }
    }

    /// The params as JSON values, every param present (what the fingerprint hashes).
    public var values: [String: JSONValue] {
        get throws {
            let data = try ParamCoding.encoder.encode(self)
            guard case .object(let o) = try JSONDecoder().decode(JSONValue.self, from: data) else { return [:] }
            return o
        }
    }
}

/// A step kind without params.
public struct NoParams: StepParams {
    public init() {}
}

/// One declared param: its value, and what the workflow, `storyloom steps` and validation need to know of it.
@propertyWrapper
public struct Param<Value: ParamValue>: Sendable {
    public var wrappedValue: Value
    let help: String
    let min: Double?, max: Double?
    let choices: [String]?
    let required: Bool
    let affectsResult: Bool

    /// - Parameters:
    ///   - min, max: bounds for numbers.
    ///   - choices: the allowed strings (enums list their cases themselves).
    ///   - required: the workflow must set it (the property's value is only a placeholder).
    ///   - affectsResult: false for params that cannot change a result (timeouts); they stay out of fingerprints.
    public init(wrappedValue: Value, help: String, min: Double? = nil, max: Double? = nil, choices: [String]? = nil,
                required: Bool = false, affectsResult: Bool = true) {
        self.wrappedValue = wrappedValue
        self.help = help
        self.min = min
        self.max = max
        self.choices = choices
        self.required = required
        self.affectsResult = affectsResult
    }
}

extension Param: Codable {
    public init(from decoder: any Decoder) throws {
        let json = try JSONValue(from: decoder)
        guard let value = Value(json: json) else {
            throw DecodingError.typeMismatch(Value.self, .init(codingPath: decoder.codingPath,
                                                               debugDescription: "got \(Explainer.show(json))"))
        }
        self.init(wrappedValue: value, help: "")
    }

    public func encode(to encoder: any Encoder) throws { try wrappedValue.json.encode(to: encoder) }
}

protocol DeclaredParam {
    func spec(name: String) -> ParamSpec
}

extension Param: DeclaredParam {
    func spec(name: String) -> ParamSpec {
        ParamSpec(name, Value.paramKind(min: min, max: max, choices: choices),
                  default: required ? nil : wrappedValue.json, affectsResult: affectsResult, doc: help)
    }
}

/// A type a param can have: integers, numbers, strings (optionally from a list), booleans, lists of
/// strings, and string enums (``ParamChoice``). Values travel as ``JSONValue``s, as the workflow holds them.
public protocol ParamValue: Sendable {
    static func paramKind(min: Double?, max: Double?, choices: [String]?) -> ParamSpec.Kind
    init?(json: JSONValue)
    var json: JSONValue { get }
}

extension Int: ParamValue {
    public static func paramKind(min: Double?, max: Double?, choices: [String]?) -> ParamSpec.Kind {
        .int(min: min.map { Int($0) }, max: max.map { Int($0) })
    }
    public init?(json: JSONValue) {
        guard let n = json.doubleValue, n == n.rounded(), abs(n) < 9e15 else { return nil }
        self = Int(n)
    }
    public var json: JSONValue { .number(Double(self)) }
}

extension Double: ParamValue {
    public static func paramKind(min: Double?, max: Double?, choices: [String]?) -> ParamSpec.Kind { .double(min: min, max: max) }
    public init?(json: JSONValue) {
        guard let n = json.doubleValue else { return nil }
        self = n
    }
    public var json: JSONValue { .number(self) }
}

extension String: ParamValue {
    public static func paramKind(min: Double?, max: Double?, choices: [String]?) -> ParamSpec.Kind {
        choices.map(ParamSpec.Kind.choice) ?? .string
    }
    public init?(json: JSONValue) {
        guard let s = json.stringValue else { return nil }
        self = s
    }
    public var json: JSONValue { .string(self) }
}

extension Bool: ParamValue {
    public static func paramKind(min: Double?, max: Double?, choices: [String]?) -> ParamSpec.Kind { .bool }
    public init?(json: JSONValue) {
        guard case .bool(let b) = json else { return nil }
        self = b
    }
    public var json: JSONValue { .bool(self) }
}

extension Array: ParamValue where Element == String {
    public static func paramKind(min: Double?, max: Double?, choices: [String]?) -> ParamSpec.Kind { .stringList }
    public init?(json: JSONValue) {
        guard let a = json.arrayValue else { return nil }
        let strings = a.compactMap(\.stringValue)
        guard strings.count == a.count else { return nil }
        self = strings
    }
    public var json: JSONValue { .array(map(JSONValue.string)) }
}

/// A param whose values are an enum's cases (`scheduler: pndm`).
public protocol ParamChoice: ParamValue, RawRepresentable, CaseIterable where RawValue == String {}

extension ParamChoice {
    public static func paramKind(min: Double?, max: Double?, choices: [String]?) -> ParamSpec.Kind {
        .choice(choices ?? allCases.map(\.rawValue))
    }
    public init?(json: JSONValue) {
        guard let s = json.stringValue else { return nil }
        self.init(rawValue: s)
    }
    public var json: JSONValue { .string(rawValue) }
}

/// Workflow param names are the properties' names in snake case, as JSON coders convert them.
enum ParamName {
    static func snakeCase(_ s: String) -> String {
        var out = ""
        for c in s {
            if c.isUppercase { if !out.isEmpty { out.append("_") }; out.append(contentsOf: c.lowercased()) }
            else { out.append(c) }
        }
        return out
    }
}

enum ParamCoding {
    static var encoder: JSONEncoder {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = [.sortedKeys]
        return e
    }

    static var decoder: JSONDecoder {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        return d
    }

    static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.typeMismatch(let type, let c), DecodingError.valueNotFound(let type, let c):
            return "\(c.codingPath.map(\.stringValue).joined(separator: ".")): expected \(type)"
        case DecodingError.keyNotFound(let key, _):
            return "missing \(key.stringValue)"
        case DecodingError.dataCorrupted(let c):
            return "\(c.codingPath.map(\.stringValue).joined(separator: ".")): \(c.debugDescription)"
        default:
            return "\(error)"
        }
    }
}
