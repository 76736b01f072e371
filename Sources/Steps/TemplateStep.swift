import Foundation
import Workflow

/// `template`: builds a text from inputs with `{name}` placeholders — e.g. a prompt from all captions of
/// a story so far. List inputs are joined with `separator`.
public enum TemplateStep {
    public static let kind = StepKind(
        name: "template", version: 2,
        summary: "Build a text (e.g. a prompt) from inputs with {name} placeholders.",
        scope: .entry,
        params: Params.self,
        inputs: [
            InputSpec("text", required: false, doc: "a text column or output"),
            InputSpec("texts", required: false, doc: "a list of texts (e.g. texts, context_texts)"),
            InputSpec("a", required: false, doc: "any text value"),
            InputSpec("b", required: false, doc: "any text value"),
            InputSpec("rounds", required: false, doc: "a dialogue's rounds column; {rounds} is its first N rounds as `Q: … A: …`"),
        ],
        outputs: ["text"],
        defaultBatchSize: 256, scopeSelectable: true,
        makeRunner: { params, _ in Runner(params: params) })

    public struct Params: StepParams {
        @Param(help: "the text, with {input} placeholders", required: true) public var template = ""
        @Param(help: "joins the values of a list input") public var separator = " "
        @Param(help: "lower-case the result") public var lowercase = false
        @Param(help: "the rounds input: how many question-answer rounds to keep (as GILL reads a dialogue)", min: 0, max: 1000)
        public var rounds = 1000
        public init() {}
    }

    struct Runner: StepRunner {
        let params: Params

        func run(_ items: [StepItem], services: StepServices) async throws -> [ItemOutcome] {
            items.map { item in
                var vars: [String: String] = ["item": item.id]
                for (name, value) in item.inputs {
                    if name == "rounds" {
                        guard let s = dialogue(value) else { return .failure("input rounds is not a list of [question, answer] (\(value.summary))") }
                        vars[name] = s
                        continue
                    }
                    guard let s = flatten(value) else { return .failure("input \(name) is not text (\(value.summary))") }
                    vars[name] = s
                }
                let text = Template.fill(params.template, vars)
                return .success(["text": .text(params.lowercase ? text.lowercased() : text)])
            }
        }

        /// The first `rounds` rounds as GILL's dialogue context writes them (GILLContext.dialogue).
        func dialogue(_ value: Value) -> String? {
            guard let list = value.list else { return nil }
            var parts: [String] = []
            for round in list.prefix(params.rounds) {
                guard let qa = round.list, qa.count == 2, let q = qa[0].text, let a = qa[1].text else { return nil }
                parts.append("Q: \(q) A: \(a)")
            }
            return parts.joined(separator: " ")
        }

        func flatten(_ value: Value) -> String? {
            switch value {
            case .text(let s): return s
            case .number(let n): return String(n)
            case .list(let l):
                let parts = l.compactMap(flatten)
                return parts.count == l.count ? parts.joined(separator: params.separator) : nil
            default: return nil
            }
        }
    }
}
