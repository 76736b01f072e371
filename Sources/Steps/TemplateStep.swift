import Foundation
import Workflow

/// `template`: builds a text from inputs with `{name}` placeholders — e.g. a prompt from all captions of
/// a story so far. List inputs are joined with `separator`.
public enum TemplateStep {
    public static let kind = StepKind(
        name: "template", version: 1,
        summary: "Build a text (e.g. a prompt) from inputs with {name} placeholders.",
        scope: .entry,
        params: [
            ParamSpec("template", .string, default: nil, doc: "the text, with {input} placeholders"),
            ParamSpec("separator", .string, default: .string(" "), doc: "joins the values of a list input"),
            ParamSpec("lowercase", .bool, default: .bool(false), doc: "lower-case the result"),
        ],
        inputs: [
            InputSpec("text", required: false, doc: "a text column or output"),
            InputSpec("texts", required: false, doc: "a list of texts (e.g. texts, context_texts)"),
            InputSpec("a", required: false, doc: "any text value"),
            InputSpec("b", required: false, doc: "any text value"),
        ],
        outputs: ["text"],
        defaultBatchSize: 256, scopeSelectable: true,
        makeRunner: { config in
            Runner(template: config.string("template") ?? "", separator: config.string("separator") ?? " ",
                   lowercase: config.bool("lowercase") ?? false)
        })

    struct Runner: StepRunner {
        let template: String, separator: String, lowercase: Bool

        func run(_ items: [StepItem], context: StepContext) async throws -> [ItemOutcome] {
            items.map { item in
                var vars: [String: String] = ["item": item.id]
                for (name, value) in item.inputs {
                    guard let s = flatten(value) else { return .failure("input \(name) is not text (\(value.summary))") }
                    vars[name] = s
                }
                let text = Template.fill(template, vars)
                return .success(["text": .text(lowercase ? text.lowercased() : text)])
            }
        }

        func flatten(_ value: Value) -> String? {
            switch value {
            case .text(let s): return s
            case .number(let n): return String(n)
            case .list(let l):
                let parts = l.compactMap(flatten)
                return parts.count == l.count ? parts.joined(separator: separator) : nil
            default: return nil
            }
        }
    }
}

/// The step kinds built into Storyloom.
public enum StandardSteps {
    public static var registry: StepRegistry {
        StepRegistry([ThumbnailStep.kind, CommandStep.kind, TemplateStep.kind, EmbedStep.kind, RetrieveStep.kind,
                      GILLCaptionStep.kind, GILLEmbedStep.kind, GILLDecideStep.kind, GILLGenerateStep.kind,
                      ScoreStep.kind(extraMetrics: CLIPScorer.metrics, makeModelScorer: CLIPScorer.make),
                      GenerateStep.kind, AttributeStep.kind])
    }
}
