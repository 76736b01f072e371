import Foundation
import StoryWorld
import Workflow

/// `caption-check`: reads a caption (typically a model's, e.g. `caption`'s output) against the StoryWorld
/// scene graph in the panel's metadata and scores, per attribute the caption names, whether it is true:
/// the measure of whether a captioner describes what is in the picture. See ``CaptionChecker`` for what
/// the reader understands.
///
/// Outputs: `background`, `kind`, `colour`, `size`, `position` — the fraction of the caption's claims about
/// that attribute that are true (0/1 for one claim), absent when the caption does not name it, so a run
/// summary's mean is the accuracy over the captions that name it and its n says how many did;
/// `dialogue_text` 1 when the caption holds dialogue-style text (questions, "Q:"/"A:", yes/no answers);
/// `hallucinated` 1 when it names a kind the scene does not hold; `repeated` 1 when it names a kind more often
/// than the scene holds it (the same object twice); `findings` the reading in words.
public enum CaptionCheckStep {
    public static let scores = ["background", "kind", "colour", "size", "position", "dialogue_text", "hallucinated", "repeated"]

    public static let kind = StepKind(
        name: "caption-check", version: 2,
        summary: "StoryWorld caption checker: background, object kinds, colours, sizes and positions a caption names vs the panel's scene graph; dialogue text, hallucinated and repeated kinds.",
        scope: .panel,
        params: Params.self,
        inputs: [InputSpec("caption", doc: "the caption text to check (e.g. captioned.caption)")],
        outputs: scores + ["findings"],
        defaultBatchSize: 256, scopeSelectable: true, scoreOutputs: scores,
        makeRunner: { params, _ in Runner(panel: params.panel) })

    public struct Params: StepParams {
        @Param(help: "entry scope: which panel's scene graph to read against (0-based; negative counts from the end, -1 = last)")
        public var panel = -1
        public init() {}
    }

    struct Runner: StepRunner {
        let panel: Int

        func run(_ items: [StepItem], services: StepServices) async throws -> [ItemOutcome] {
            let checker = CaptionChecker()
            return items.map { item in
                do {
                    guard let caption = item.inputs["caption"]?.text else {
                        throw StepError("input caption is not a text (\(item.inputs["caption"]?.summary ?? "missing"))")
                    }
                    let r = checker.check(caption, against: try storyWorldScene(item, panel: panel, step: "caption-check"))
                    var out: Outputs = ["dialogue_text": .number(r.dialogueText ? 1 : 0),
                                        "hallucinated": .number(r.hallucinated.isEmpty ? 0 : 1),
                                        "repeated": .number(r.repeated.isEmpty ? 0 : 1),
                                        "findings": .text(r.findings)]
                    for a in CaptionChecker.Attribute.allCases {
                        if let accuracy = r[a].accuracy { out[a.rawValue] = .number(accuracy) }
                    }
                    return .success(out)
                } catch {
                    return .failure("\(error)")
                }
            }
        }
    }
}
