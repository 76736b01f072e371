import Foundation
import Stories
import Yams

/// YAML values as JSON values, and YAML syntax errors as located workflow errors.
extension SpecParser {
    static func jsonValue(_ node: Node) -> JSONValue? {
        switch node {
        case .scalar(let s):
            if s.style == .plain {
                if node.null != nil { return .null }
                if let b = node.bool { return .bool(b) }
                if let i = node.int { return .number(Double(i)) }
                if let f = node.float { return .number(f) }
            }
            return .string(s.string)
        case .sequence(let seq):
            var out: [JSONValue] = []
            for n in seq { guard let v = jsonValue(n) else { return nil }; out.append(v) }
            return .array(out)
        case .mapping(let map):
            var out: [String: JSONValue] = [:]
            for (k, v) in map { guard let key = k.string, let value = jsonValue(v) else { return nil }; out[key] = value }
            return .object(out)
        case .alias:
            return nil
        }
    }

    static func yamlError(_ error: YamlError, file: String) -> WorkflowError {
        switch error {
        case .scanner(let context, let problem, let mark, _):
            return WorkflowError(SourceLocation(file: file, line: mark.line, column: mark.column),
                                 "invalid YAML: \(problem)\(context.map { " \($0.text)" } ?? "")")
        case .parser(let context, let problem, let mark, _):
            return WorkflowError(SourceLocation(file: file, line: mark.line, column: mark.column),
                                 "invalid YAML: \(problem)\(context.map { " \($0.text)" } ?? "")")
        case .composer(let context, let problem, let mark, _):
            return WorkflowError(SourceLocation(file: file, line: mark.line, column: mark.column),
                                 "invalid YAML: \(problem)\(context.map { " \($0.text)" } ?? "")")
        default:
            return WorkflowError(SourceLocation(file: file, line: 1, column: 1), "invalid YAML: \(error)")
        }
    }
}
