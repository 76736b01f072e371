import Foundation
@testable import Gallery

/// Builds a sample ``GalleryDocument`` with real image files: stories and a dialogue, many columns,
/// every kind of cell, failures, a missing image, NaN/∞ scores and a run report with charts.
///
/// With `hostile` set, every piece of user text carries markup payloads; the document's shape is
/// otherwise identical, so the two renders must parse to the same DOM structure.
struct SampleGallery {
    static let payloads = [
        "<script>alert(1)</script>",
        "\"><img src=x onerror=alert(1)>",
        "'><svg onload=alert(1)>",
        "&lt;b&gt; &amp; &#60;",
    ]
    /// Scores of the third step's first series: Sturges gives 4 bins over [0.1, 1.0] of width
    /// 0.225, holding 4, 0, 1 and 3 values.
    static let histogramValues = [0.1, 0.2, 0.2, 0.3, 0.9, 0.95, 1.0, 0.6]
    static let histogramCounts = [4, 0, 1, 3]

    /// Where the source images are written (outside the gallery folder).
    let sourceFolder: URL
    let hostile: Bool

    init(sourceFolder: URL, hostile: Bool = false) {
        self.sourceFolder = sourceFolder
        self.hostile = hostile
    }

    /// User text, with payloads appended when hostile.
    func t(_ text: String) -> String {
        hostile ? text + " " + Self.payloads.joined(separator: " ") : text
    }

    static let columns: [(id: String, label: String)] = [
        ("sd.last", "SD · last caption"), ("sd.all", "SD · all captions"), ("gill.captions", "GILL · captions"),
        ("gill.full", "GILL · captions + images"), ("retrieve", "Retrieved"), ("decide", "Decision"),
        ("clipsim", "CLIP similarity"), ("caption", "Caption"),
    ]

    static let storyIds = ["story-001", "story/002", "story <003>", "物語-004", "../../etc/passwd", "story-006"]

    /// Writes a small SVG scene (background, ground, a ball and a box) and returns it as media.
    func image(_ name: String, seed: Int, hashed: Bool = false) throws -> MediaFile {
        let skies = ["#9fd3ff", "#1e2a4a", "#ffd59e", "#e8f1f8", "#b8e0c8", "#f4b6c2"]
        let colours = ["#e63946", "#2a9d8f", "#f4a261", "#6a4c93", "#ffbe0b", "#3a86ff"]
        let sky = skies[seed % skies.count]
        let ball = colours[(seed * 7 + 1) % colours.count]
        let box = colours[(seed * 3 + 2) % colours.count]
        let x = 30 + (seed * 37) % 140
        let svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" viewBox="0 0 256 256">
        <rect width="256" height="256" fill="\(sky)"/><rect y="180" width="256" height="76" fill="#7cb36b"/>
        <circle cx="\(x + 40)" cy="150" r="30" fill="\(ball)"/>
        <rect x="\(200 - x / 2)" y="120" width="50" height="60" fill="\(box)"/></svg>
        """
        let url = sourceFolder.appendingPathComponent(name + ".svg")
        try Data(svg.utf8).write(to: url)
        return MediaFile(path: url.path, hash: hashed ? "deadbeef" + String(format: "%04d", seed) : nil)
    }

    func document() throws -> GalleryDocument {
        try FileManager.default.createDirectory(at: sourceFolder, withIntermediateDirectories: true)
        var entries: [GalleryEntry] = []
        let sentences = ["A red ball sits in the park.", "It rolls to the right.", "A box appears next to it.",
                         "The sky turns dark.", "It stops beside the box."]
        for (s, id) in Self.storyIds.enumerated() {
            var panels: [GalleryPanel] = []
            for p in 1...5 {
                var groundTruth = try image("gt-\(s)-\(p)", seed: s * 5 + p, hashed: p % 2 == 0)
                if s == 2 && p == 3 {
                    groundTruth = MediaFile(path: sourceFolder.appendingPathComponent("gone/missing.png").path)
                }
                var cells: [String: CellValue] = ["caption": .text(t("caption of panel \(p)"))]
                if p == 5 { cells["sd.last"] = .image(try image("sd-last-\(s)", seed: s + 40), caption: nil) }
                if s == 0 && p == 2 { cells[t("extra.column")] = .number(0.25) }
                panels.append(GalleryPanel(index: p, text: t(sentences[p - 1]), groundTruth: groundTruth, cells: cells))
            }
            var cells: [String: CellValue] = [
                "sd.all": .image(try image("sd-all-\(s)", seed: s + 50), caption: t("SD from five captions")),
                "gill.captions": .image(try image("gill-c-\(s)", seed: s + 60), caption: nil),
                "gill.full": s == 1 ? .failed(error: t("out of memory in UNet block 3"))
                    : .image(try image("gill-f-\(s)", seed: s + 70), caption: t("GILL, captions + images")),
                "retrieve": .ranked(try (0..<3).map { r in
                    RankedImage(id: t("img-\(s)-\(r)"), image: r == 2 ? nil : try image("ret-\(s)-\(r)", seed: s + r),
                                score: 0.9 - Double(r) * 0.15)
                }),
                "decide": .decision(choice: s % 2 == 0 ? "generate" : "retrieve", probability: 0.5 + Double(s) * 0.08,
                                    detail: t("decision head on [IMG0]")),
                "clipsim": .number(0.55 + Double(s) * 0.03),
            ]
            if s == 3 { cells["clipsim"] = .number(.nan) }
            var scores: [String: Double] = [
                "clip_sd_last": 0.52 + Double(s) * 0.02, "clip_gill_full": 0.58 + Double((s * 7) % 5) * 0.03,
                t("recall@1"): Double(s % 3) / 2,
            ]
            if s == 3 { scores["clip_gill_full"] = .nan }
            if s == 4 { scores["clip_sd_last"] = .infinity }
            entries.append(GalleryEntry(id: t(id), kind: "story", panels: panels, cells: cells, scores: scores,
                                        problems: s == 2 ? [t("import warning: panel 3 image not found")] : []))
        }
        entries.append(GalleryEntry(
            id: t("dialogue-001"), kind: "dialogue",
            panels: [GalleryPanel(index: 1, text: t("A snowy scene with a house and a tree."),
                                  groundTruth: try image("dialogue-gt", seed: 3))],
            rounds: [(t("Is there a house?"), t("Yes, a small one.")), (t("What colour is it?"), t("Red.")),
                     (t("Is it night?"), t("No, it is day."))],
            cells: ["gill.full": .image(try image("dialogue-gen", seed: 9), caption: nil), "clipsim": .number(0.64)],
            scores: ["clip_gill_full": 0.64]))

        let generated = try image("sample-gen", seed: 11)
        let steps = [
            StepReport(id: t("caption"), kind: "caption", params: [(t("model"), t("clip-vit-l14")), ("max_tokens", "32")],
                       seconds: 0.42, ran: 6, cached: 0, failed: 0,
                       samples: [(t("story-001"), .text(t("a red ball in a park")))]),
            StepReport(id: "generate", kind: "generate",
                       params: [("guidance", "7.5"), ("steps", "50"), (t("prompt"), t("{captions}"))],
                       seconds: 93.5, ran: 5, cached: 1, failed: 1,
                       errors: [(t("story/002"), t("out of memory in UNet block 3"))],
                       samples: [(t("story-001"), .image(generated, caption: t("generated"))),
                                 ("story-006", .decision(choice: "retrieve", probability: 0.91, detail: nil))]),
            StepReport(id: "score", kind: "score", params: [("metric", "clip-cosine")], seconds: 1.2,
                       ran: 7, cached: 0, failed: 0,
                       scoreSeries: [(t("clip_gill_full"), Self.histogramValues),
                                     ("clip_sd_last", [0.5, 0.52, 0.54, .nan, 0.6, 0.61, .infinity])]),
        ]
        let charts = [
            ChartSpec(title: t("CLIP similarity vs context length"), xLabels: ["1", "2", "3", "4", "5"],
                      series: [(t("GILL"), [0.58, 0.6, 0.61, .nan, 0.64]), ("SD", [0.55, 0.57, 0.59, 0.6, 0.6])],
                      yLabel: t("CLIP sim")),
            ChartSpec(title: "Retrieval recall@k", xLabels: ["@1", "@5", "@10"],
                      series: [("GILL", [0.2, 0.45, 0.6]), ("CLIP", [0.25, 0.5, 0.7])], yLabel: "recall", kind: .bar),
        ]
        return GalleryDocument(
            title: t("StoryWorld evaluation"), workflowName: t("storyworld-eval"),
            generatedAt: "2026-11-28T08:00:00Z",
            columns: Self.columns.map { GalleryColumn(id: $0.id, label: t($0.label)) },
            entries: entries,
            report: RunReport(startedAt: "2026-11-28T07:58:00Z", seconds: 95.1, status: "failed", steps: steps,
                              charts: charts))
    }
}

/// A fresh temporary folder per test, removed by the caller's `defer`.
func temporaryFolder(_ name: String = #function) throws -> URL {
    let safe = name.filter { $0.isLetter || $0.isNumber }
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("gallery-tests-\(safe)-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
