import Foundation
import Imaging
import StoryWorld
import Workflow

/// `attributes`: reads an image (typically a generated one) against the StoryWorld scene graph in the
/// panel's metadata and scores, per attribute, whether the pixels show it — a quality measure that does
/// not lean on CLIP (which also conditions the generator and so flatters it).
///
/// Its own step kind rather than a `score` metric: one reading yields several numbers (background,
/// colour, size, position, kind, presence), and its ground truth is the panel's metadata, not a second
/// image or text column as `score` compares.
///
/// Outputs are numbers in [0, 1]: `background` 0/1; `colour`, `size`, `position`, `kind` and `present`
/// the fraction of the scene's objects read correctly (0/1 for one-object scenes); `all_present` 1 when
/// every object was found at its slot (for two-object scenes: both present); `objects` the object
/// count (not a score), to split results by scene size. Run summaries report each score's mean — an
/// accuracy — with its 95% interval. See ``AttributeChecker`` for the method.
public enum AttributeStep {
    public static let scores = ["background", "colour", "size", "position", "kind", "present", "all_present"]

    public static let kind = StepKind(
        name: "attributes", version: 2,
        summary: "StoryWorld attribute checker: background, object colour, size, position, kind and presence of an image vs the panel's scene graph.",
        scope: .panel,
        params: Params.self,
        inputs: [InputSpec("image", doc: "the image to check (e.g. a generated image)")],
        outputs: scores + ["objects"],
        defaultBatchSize: 32, scopeSelectable: true, scoreOutputs: scores,
        makeRunner: { params, _ in Runner(panel: params.panel, objects: params.objects) })

    public struct Params: StepParams {
        @Param(help: "entry scope: which panel's scene graph to read against (0-based; negative counts from the end, -1 = last)")
        public var panel = -1
        @Param(help: "score only scenes with this many objects (0: all); the others get no scores (NaN), so means split by scene size",
               min: 0, max: 8)
        public var objects = 0
        public init() {}
    }

    struct Runner: StepRunner {
        let panel: Int
        let objects: Int

        func run(_ items: [StepItem], services: StepServices) async throws -> [ItemOutcome] {
            let checker = AttributeChecker()
            return items.map { item in
                do {
                    guard let ref = item.inputs["image"]?.image else {
                        throw StepError("input image is not an image (\(item.inputs["image"]?.summary ?? "missing"))")
                    }
                    let scene = try storyWorldScene(item, panel: panel, step: "attributes")
                    if objects > 0 && scene.objects.count != objects {
                        // Not this step's population: no scores, so run summaries leave the item out (n counts the rest).
                        var out: Outputs = ["objects": .number(Double(scene.objects.count))]
                        for name in AttributeStep.scores { out[name] = .number(.nan) }
                        return .success(out)
                    }
                    let image = try services.rgbImage(.image(ref), input: "image")
                    let r = try checker.check(image, against: scene)
                    return .success([
                        "background": .number(r.backgroundHit ? 1 : 0), "colour": .number(r.colourHits),
                        "size": .number(r.sizeHits), "position": .number(r.positionHits), "kind": .number(r.kindHits),
                        "present": .number(r.presentHits), "all_present": .number(r.allPresent ? 1 : 0),
                        "objects": .number(Double(scene.objects.count)),
                    ])
                } catch {
                    return .failure("\(error)")
                }
            }
        }
    }
}

/// The StoryWorld scene graph of the item's panel (panel scope) or of panel `panel` of its entry (entry
/// scope; negative counts from the end), for steps that judge something against it.
func storyWorldScene(_ item: StepItem, panel: Int, step: String) throws -> Scene {
    let panels = item.entry.panels
    let index = item.panelIndex ?? (panel < 0 ? panels.count + panel : panel)
    guard panels.indices.contains(index) else {
        throw StepError("\(item.entry.id) has \(panels.count) panel(s); panel \(index) does not exist")
    }
    guard let meta = panels[index].metadata else {
        throw StepError("\(item.entry.id) panel \(index + 1) has no metadata: \(step) needs a StoryWorld scene graph")
    }
    do { return try Scene(metadata: meta) } catch {
        throw StepError("\(item.entry.id) panel \(index + 1): \(error)")
    }
}
