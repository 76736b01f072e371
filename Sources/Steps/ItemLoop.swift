import Foundation
import Imaging
import Workflow

extension StepServices {
    /// The per-item loop of the model steps: items in order; once the run is cancelled the batch stops
    /// (nothing of it is committed, the next run redoes it); an item's error is its failure and the
    /// others go on.
    func eachItem(_ items: [StepItem], _ body: (_ index: Int, _ item: StepItem) throws -> Outputs) throws -> [ItemOutcome] {
        var outcomes: [ItemOutcome] = []
        outcomes.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            if isCancelled() { throw CancellationError() }
            do {
                outcomes.append(.success(try body(index, item)))
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                outcomes.append(.failure("\(error)"))
            }
        }
        return outcomes
    }

    /// An image input as RGB pixels (what the models read); `input` names it in the error.
    func rgbImage(_ value: Value?, input: String) throws -> Image {
        guard let ref = value?.image else { throw StepError("input \(input) is not an image (\(value?.summary ?? "missing"))") }
        return try loadImage(ref).converted(toChannels: 3)
    }

    /// Loads and decodes an image input; one from the media store is checked against its hash first.
    func loadImage(_ ref: ImageRef) throws -> Image {
        try Image.decode(try loadImageData(ref), source: imageURL(ref).path)
    }
}
