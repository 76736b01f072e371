import Foundation
import Workflow

/// `decision-oracle`: which of a generated and a retrieved image is closer to the ground truth, given one
/// score of each (e.g. CLIP image similarity to the true panel), and whether a retrieve-or-generate decision
/// agreed. This is how GILL labels its decision head's training data; over held-out items the mean of
/// `correct` is the decision accuracy and the mean of `generate_wins` the base rate of generation winning.
public enum DecisionOracleStep {
    public static let kind = StepKind(
        name: "decision-oracle", version: 1,
        summary: "Label retrieve vs generate by which image scores higher against the ground truth; with a decision, whether it agreed.",
        scope: .entry,
        params: NoParams.self,
        inputs: [InputSpec("generated", doc: "a number: the generated image's score against the ground truth (higher is better)"),
                 InputSpec("retrieved", doc: "a number: the retrieved image's score against the ground truth"),
                 InputSpec("decision", required: false, doc: "a retrieve/generate choice to judge (e.g. decided.decision)")],
        outputs: ["oracle", "generate_wins", "correct"],
        defaultBatchSize: 256, scopeSelectable: true, scoreOutputs: ["generate_wins", "correct"],
        makeRunner: { _, _ in Runner() })

    struct Runner: StepRunner {
        func run(_ items: [StepItem], services: StepServices) async throws -> [ItemOutcome] {
            items.map { item in
                guard let g = item.inputs["generated"]?.number, let r = item.inputs["retrieved"]?.number else {
                    return .failure("generated and retrieved must be numbers (scores against the ground truth); got \(item.inputs["generated"]?.summary ?? "nothing") and \(item.inputs["retrieved"]?.summary ?? "nothing")")
                }
                // Ties go to retrieval: a retrieved image is a real one, and it costs nothing to show.
                let generate = g > r
                var out: Outputs = ["oracle": .choice(generate ? "generate" : "retrieve", probability: 1),
                                    "generate_wins": .number(generate ? 1 : 0)]
                if let d = item.inputs["decision"] {
                    guard case .choice(let chosen, _) = d, chosen == "generate" || chosen == "retrieve" else {
                        return .failure("decision must be a retrieve/generate choice (e.g. decided.decision); got \(d.summary)")
                    }
                    out["correct"] = .number((chosen == "generate") == generate ? 1 : 0)
                }
                return .success(out)
            }
        }
    }
}
