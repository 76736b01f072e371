import Foundation
import Stories

/// Checks a param value against its declared kind (type, bounds, choices); the messages of validation and `--set`.
extension SpecParser {
    /// Why `value` does not fit `spec`, or nil when it does.
    static func check(_ value: JSONValue, against spec: ParamSpec) -> String? {
        switch spec.kind {
        case .int(let lo, let hi):
            guard let n = value.doubleValue, n == n.rounded() else { return "expected an integer, got \(describe(value))" }
            if let lo, Int(n) < lo { return "expected an integer ≥ \(lo), got \(Int(n))" }
            if let hi, Int(n) > hi { return "expected an integer ≤ \(hi), got \(Int(n))" }
        case .double(let lo, let hi):
            guard let n = value.doubleValue else { return "expected a number, got \(describe(value))" }
            if let lo, n < lo { return "expected a number ≥ \(lo), got \(n)" }
            if let hi, n > hi { return "expected a number ≤ \(hi), got \(n)" }
        case .string:
            guard value.stringValue != nil else { return "expected a string, got \(describe(value))" }
        case .bool:
            guard case .bool = value else { return "expected true or false, got \(describe(value))" }
        case .choice(let options):
            guard let s = value.stringValue, options.contains(s) else {
                let got = value.stringValue ?? describe(value)
                return "expected one of \(options.joined(separator: ", ")), got \"\(got)\"\(Suggest.hint(got, options))"
            }
        case .stringList:
            guard let a = value.arrayValue, a.allSatisfy({ $0.stringValue != nil }) else { return "expected a list of strings, got \(describe(value))" }
        }
        return nil
    }

    static func describe(_ v: JSONValue) -> String {
        switch v {
        case .null: return "null"
        case .bool(let b): return "\(b)"
        case .number(let n): return n == n.rounded() ? "\(Int(n))" : "\(n)"
        case .string(let s): return "\"\(s)\""
        case .array: return "a list"
        case .object: return "a mapping"
        }
    }
}
