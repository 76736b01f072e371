import Foundation
import Imaging
import Tensor

/// GILL's input layout, as its code builds it (`GILL.generate_for_images_and_texts` and the
/// scripts in GILL's `evals/`): a list of text and image pieces; each text piece is tokenised on
/// its own and only the first text piece gets BOS (`always_add_bos` false), so `[image, text]`
/// reads `v1…vk </s> text`; an image is its `n_visual_tokens` visual tokens.
public enum GILLPrompt {
    /// The side GILL's VIST script squashes context images to before the CLIP processor.
    public static let vistImageSize = 224

    /// Interleaved pieces as GILL's prompt list: BOS (`.bos`) before the first text piece only.
    public static func segments(_ pieces: [GILLSegment]) -> [GILLSegment] {
        var out: [GILLSegment] = []
        var bosPlaced = pieces.contains { if case .bos = $0 { true } else { false } }
        for p in pieces {
            if case .text = p, !bosPlaced {
                out.append(.bos)
                bosPlaced = true
            }
            out.append(p)
        }
        return out
    }

    /// A VIST story as GILL's `evals/generate_vist_images.py` builds it: `cap1, img1, …, cap4,
    /// img4, cap5` — each caption followed by its image, the last caption by none — with every
    /// image squashed (not cropped) to 224×224 by Pillow's default (bicubic) resize. Fewer images
    /// than earlier captions leave the later captions without one.
    public static func vist(captions: [String], images: [Image]) -> [GILLSegment] {
        var pieces: [GILLSegment] = []
        for (i, c) in captions.enumerated() {
            pieces.append(.text(c))
            if i < captions.count - 1, i < images.count { pieces.append(.image(squashed(images[i]))) }
        }
        return segments(pieces)
    }

    /// `image` resized to 224×224 ignoring its aspect ratio, as `Image.resize((224, 224))`.
    public static func squashed(_ image: Image) -> Image {
        image.resized(width: vistImageSize, height: vistImageSize, filter: .bicubic)
    }

    /// A VisDial dialogue as GILL's `evals/generate_visdial_images.py` builds it: one text piece,
    /// the rounds only (no caption) as `Q: <question>?` and `A: <answer>` lines joined by
    /// newlines. GILL appends "?" to VisDial's bare questions; a question that already ends with
    /// one keeps it single.
    public static func visdialText(rounds: [(question: String, answer: String)]) -> String {
        rounds.flatMap { r in
            ["Q: " + (r.question.hasSuffix("?") ? r.question : r.question + "?"), "A: " + r.answer]
        }.joined(separator: "\n")
    }

    /// `visdialText` as GILL's one-piece prompt.
    public static func visdial(rounds: [(question: String, answer: String)]) -> [GILLSegment] {
        segments([.text(visdialText(rounds: rounds))])
    }

    /// The token GILL stops a generated caption at: the first id of "\n" encoded without BOS
    /// (byte-level BPE stores it as "Ċ", so looking up "\n" in the vocabulary finds nothing).
    public static func newlineTokenID(_ tokenizer: GPT2Tokenizer) -> Int? {
        tokenizer.encode("\n", addBOS: false).first
    }

    /// GILL's `utils.truncate_caption`: newlines at both ends stripped, then cut after the first
    /// newline, or if there is none after the first period.
    public static func truncateCaption(_ caption: String) -> String {
        var c = Substring(caption)
        while c.first == "\n" { c = c.dropFirst() }
        while c.last == "\n" { c = c.dropLast() }
        if let nl = c.firstIndex(of: "\n") { return String(c[...nl]) }
        if let dot = c.firstIndex(of: ".") { return String(c[...dot]) }
        return String(c)
    }

    /// One resolved part of an interleaved input: token ids, or an image's visual tokens.
    public enum Part {
        case ids([Int])
        case image(Image)
        case pixels(Tensor)
    }

    /// Segments as ids and images: text through `tokenizer` (no BOS of its own), `.bos` as the
    /// tokenizer's BOS; with `addBOS` a BOS goes first unless the segments place one.
    public static func parts(_ segments: [GILLSegment], tokenizer: GPT2Tokenizer, addBOS: Bool) -> [Part] {
        let placed = segments.contains { if case .bos = $0 { true } else { false } }
        var out: [Part] = addBOS && !placed ? [.ids([tokenizer.bosTokenID])] : []
        for s in segments {
            switch s {
            case let .text(t): out.append(.ids(tokenizer.encode(t, addBOS: false)))
            case let .ids(ids): out.append(.ids(ids))
            case .bos: out.append(.ids([tokenizer.bosTokenID]))
            case let .image(image): out.append(.image(image))
            case let .pixels(p): out.append(.pixels(p))
            }
        }
        return out
    }

    /// The position-by-position layout of `segments`: token ids, and `-1 - n` for each of the
    /// `visualTokens` positions of the n-th image (what the tests compare with GILL's scripts).
    public static func layout(_ segments: [GILLSegment], tokenizer: GPT2Tokenizer, visualTokens: Int,
                              addBOS: Bool = true) -> [Int] {
        var out: [Int] = []
        var image = 0
        for p in parts(segments, tokenizer: tokenizer, addBOS: addBOS) {
            switch p {
            case let .ids(ids): out += ids
            case .image:
                out += [Int](repeating: -1 - image, count: visualTokens)
                image += 1
            case let .pixels(t):
                for _ in 0..<max(1, t.shape.first ?? 1) {
                    out += [Int](repeating: -1 - image, count: visualTokens)
                    image += 1
                }
            }
        }
        return out
    }
}
