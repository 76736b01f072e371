import Foundation
import Models
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
            InputSpec("rounds", required: false, doc: "a dialogue's rounds column; {rounds} is its first N rounds (rounds_style)"),
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
        @Param(help: "how {rounds} is written: inline (`Q: … A: …` joined by spaces) or gill (GILL's VisDial script: `Q: …?` and `A: …` lines joined by newlines)")
        public var roundsStyle = RoundsStyle.inline
        public init() {}
    }

    public enum RoundsStyle: String, ParamChoice {
        case inline, gill
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

        /// The first `rounds` rounds, inline or as GILL's VisDial script writes them (`GILLPrompt.visdialText`).
        func dialogue(_ value: Value) -> String? {
            guard let list = value.list else { return nil }
            var rounds: [(question: String, answer: String)] = []
            for round in list.prefix(params.rounds) {
                guard let qa = round.list, qa.count == 2, let q = qa[0].text, let a = qa[1].text else { return nil }
                rounds.append((q, a))
            }
            switch params.roundsStyle {
            case .inline: return rounds.map { "Q: \($0.question) A: \($0.answer)" }.joined(separator: " ")
            case .gill: return GILLPrompt.visdialText(rounds: rounds)
            }
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
