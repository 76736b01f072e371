import Foundation
import Stories
import Yams

/// The parse state: the file and the errors found so far, and typed reads of YAML nodes that record an error.
extension SpecParser {
    struct Context {
        var file: String
        var errors: [WorkflowError] = []

        func location(_ node: Node) -> SourceLocation? {
            node.mark.map { SourceLocation(file: file, line: $0.line, column: $0.column) }
        }

        func error(_ node: Node, _ message: String) -> WorkflowError {
            WorkflowError(location(node), message)
        }

        mutating func checkKeys(_ map: Node.Mapping, allowed: [String], what: String) {
            for (k, _) in map {
                guard let key = k.string else {
                    errors.append(error(k, "\(what) keys must be strings"))
                    continue
                }
                if !allowed.contains(key) {
                    errors.append(error(k, "unknown key \"\(key)\" in \(what)\(Suggest.hint(key, allowed)); allowed: \(allowed.joined(separator: ", "))"))
                }
            }
        }

        mutating func string(_ node: Node, key: String) -> String? {
            guard case .scalar(let s) = node else {
                errors.append(error(node, "\"\(key)\" must be a string"))
                return nil
            }
            return s.string
        }

        mutating func bool(_ node: Node, key: String) -> Bool? {
            guard let b = node.bool else {
                errors.append(error(node, "\"\(key)\" must be true or false"))
                return nil
            }
            return b
        }

        mutating func int(_ node: Node, key: String, min: Int) -> Int? {
            guard let i = node.int else {
                errors.append(error(node, "\"\(key)\" must be an integer"))
                return nil
            }
            guard i >= min else {
                errors.append(error(node, "\"\(key)\" must be ≥ \(min), got \(i)"))
                return nil
            }
            return i
        }
    }
}
