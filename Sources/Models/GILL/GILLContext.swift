import Foundation
import Imaging

/// How much of a story GILL reads before producing its next image — the GILL paper's VIST settings.
public enum GILLContextMode: String, CaseIterable, Sendable {
    /// The caption of the image to produce only (what plain Stable Diffusion gets).
    case lastCaption = "last-caption"
    /// Every caption of the story, the last one describing the image to produce.
    case captions
    /// Every caption, each earlier one preceded by its image (VIST: 4 images + 5 captions).
    case captionsAndImages = "captions+images"
}

/// Builds GILL's interleaved inputs for story and dialogue contexts (GILL paper §4.1: VIST
/// stories, VisDial dialogues).
public enum GILLContext {
    /// A story context: `captions` in order (the last describes the image to produce) and the
    /// images of the earlier panels. `images[i]` precedes `captions[i]`; the last caption never
    /// gets an image, so binding all five panel images cannot leak the target image.
    public static func story(captions: [String], images: [Image] = [], mode: GILLContextMode) -> [GILLSegment] {
        guard let last = captions.last else { return [] }
        switch mode {
        case .lastCaption:
            return [.text(last)]
        case .captions:
            return [.text(captions.joined(separator: " "))]
        case .captionsAndImages:
            var out: [GILLSegment] = []
            for (i, c) in captions.enumerated() {
                if i < captions.count - 1, i < images.count { out.append(.image(images[i])) }
                // After text a caption continues with a space (as the captions setting's joined
                // text); after an image it starts fresh, as GILL tokenises each text piece alone.
                if case .text? = out.last { out.append(.text(" " + c)) } else { out.append(.text(c)) }
            }
            return out
        }
    }

    /// A dialogue context (VisDial): the caption, then the first `maxRounds` question–answer
    /// rounds as `Q: … A: …`. With `.lastCaption` only the caption is read.
    public static func dialogue(caption: String, rounds: [(question: String, answer: String)], maxRounds: Int,
                                mode: GILLContextMode) -> [GILLSegment] {
        guard mode != .lastCaption else { return [.text(caption)] }
        let text = ([caption] + rounds.prefix(max(0, maxRounds)).map { "Q: \($0.question) A: \($0.answer)" }).joined(separator: " ")
        return [.text(text)]
    }
}
