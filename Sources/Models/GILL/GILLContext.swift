import Foundation
import Imaging

/// How much of a story GILL reads before producing its next image — the GILL paper's VIST settings.
public enum GILLContextMode: String, CaseIterable, Sendable {
    /// The caption of the image to produce only (what plain Stable Diffusion gets).
    case lastCaption = "last-caption"
    /// Every caption of the story, the last one describing the image to produce.
    case captions
    /// Every caption, each earlier one followed by its image (VIST: 4 images + 5 captions).
    case captionsAndImages = "captions+images"
}

/// How a context is laid out as tokens.
public enum GILLContextLayout: String, CaseIterable, Sendable {
    /// As GILL's code builds it (`GILLPrompt`): each caption its own text piece, BOS before the
    /// first text piece only, a story's images after their captions and squashed to 224×224, a
    /// dialogue's rounds (no caption) as `Q: …?` / `A: …` lines joined by newlines.
    case gill
    /// Storyloom's earlier layout: BOS first, captions joined by spaces with each image before
    /// its caption, a dialogue as its caption then `Q: … A: …` rounds on one line.
    case legacy
}

/// Builds GILL's interleaved inputs for story and dialogue contexts (GILL paper §4.1: VIST
/// stories, VisDial dialogues).
public enum GILLContext {
    /// A story context: `captions` in order (the last describes the image to produce) and the
    /// images of the earlier panels (`images[i]` belongs to `captions[i]`). The last caption never
    /// gets an image, so binding all five panel images cannot leak the target image.
    public static func story(captions: [String], images: [Image] = [], mode: GILLContextMode,
                             layout: GILLContextLayout = .gill) -> [GILLSegment] {
        guard let last = captions.last else { return [] }
        switch (mode, layout) {
        case (.lastCaption, .gill):
            return GILLPrompt.segments([.text(last)])
        case (.captions, .gill):
            return GILLPrompt.vist(captions: captions, images: [])
        case (.captionsAndImages, .gill):
            return GILLPrompt.vist(captions: captions, images: images)
        case (.lastCaption, .legacy):
            return [.text(last)]
        case (.captions, .legacy):
            return [.text(captions.joined(separator: " "))]
        case (.captionsAndImages, .legacy):
            var out: [GILLSegment] = []
            for (i, c) in captions.enumerated() {
                if i < captions.count - 1, i < images.count { out.append(.image(images[i])) }
                // After text a caption continues with a space (as the captions setting's joined
                // text); after an image it starts fresh.
                if case .text? = out.last { out.append(.text(" " + c)) } else { out.append(.text(c)) }
            }
            return out
        }
    }

    /// A dialogue context (VisDial): the first `maxRounds` question–answer rounds — with the
    /// `.gill` layout those alone, as GILL's script (the caption only when no round is read);
    /// with `.legacy` after the caption as `Q: … A: …`. With `.lastCaption` only the caption is read.
    public static func dialogue(caption: String, rounds: [(question: String, answer: String)], maxRounds: Int,
                                mode: GILLContextMode, layout: GILLContextLayout = .gill) -> [GILLSegment] {
        let read = Array(rounds.prefix(max(0, maxRounds)))
        switch layout {
        case .gill:
            guard mode != .lastCaption, !read.isEmpty else { return GILLPrompt.segments([.text(caption)]) }
            return GILLPrompt.visdial(rounds: read)
        case .legacy:
            guard mode != .lastCaption else { return [.text(caption)] }
            return [.text(([caption] + read.map { "Q: \($0.question) A: \($0.answer)" }).joined(separator: " "))]
        }
    }
}
