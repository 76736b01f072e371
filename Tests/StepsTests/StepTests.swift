import Foundation
import Imaging
import Stories
import Store
import Testing
@testable import Steps
@testable import Workflow

/// Runs one step kind directly on hand-made items.
struct StepHarness {
    let root: URL
    let media: MediaStore

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("storyloom-steps-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        media = try MediaStore(root: root.appendingPathComponent("media"))
    }

    func imageFile(_ image: Image, name: String) throws -> Value {
        let url = root.appendingPathComponent(name)
        try image.write(to: url)
        return .image(ImageRef(hash: Hashing.sha256Hex(try Data(contentsOf: url)), ext: url.pathExtension, path: url.path))
    }

    func run(_ kind: StepKind, params: [String: JSONValue], inputs: [[String: Value]], seed: UInt64 = 1) async throws -> [ItemOutcome] {
        var full: [String: JSONValue] = [:]
        for p in kind.params { if let d = p.defaultValue { full[p.name] = d } }
        for (k, v) in params { full[k] = v }
        let config = StepConfiguration(stepID: "t", kind: kind.name, params: full, model: nil,
                                       collection: StoryCollection(name: "c", root: root, entries: []),
                                       workflowFolder: root, media: media, allowOutsideRoot: false)
        let runner = try kind.makeRunner(config)
        let entry = Entry(id: "e1", kind: .story, panels: [Panel(image: nil, text: "x")])
        let items = inputs.enumerated().map { i, inp in
            StepItem(id: "e\(i + 1)", entry: entry, panelIndex: 0, inputs: inp, pools: [:], seed: seed + UInt64(i))
        }
        return try await runner.run(items, services: StepServices(media: media, isCancelled: { false }))
    }

    func outputs(_ o: ItemOutcome) -> Outputs? { if case .success(let out) = o { return out }; return nil }
    func error(_ o: ItemOutcome) -> String? { if case .failure(let e) = o { return e }; return nil }

    /// The largest per-channel difference in 8-bit levels. Items denoised together agree with items run alone
    /// to float rounding (batched products round differently), which can move a pixel across a rounding
    /// boundary: one level. Same-seed repeats of the same call are exact (`BLASGate`) and are compared with `==`.
    static func levels(_ a: Image, _ b: Image) -> Int {
        guard a.width == b.width, a.height == b.height, a.channels == b.channels else { return .max }
        return zip(a.pixels, b.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
    }

    static func gradient(_ w: Int, _ h: Int, shift: Int = 0) -> Image {
        var px = [UInt8]()
        for y in 0..<h { for x in 0..<w { px += [UInt8((x * 255 / max(1, w - 1) + shift) % 256), UInt8(y * 255 / max(1, h - 1)), 90] } }
        return Image(width: w, height: h, channels: 3, pixels: px)
    }
}

@Suite struct StepTests {
    @Test func thumbnailStoresAResizedPNG() async throws {
        let h = try StepHarness()
        let source = StepHarness.gradient(37, 23)
        let out = try await h.run(ThumbnailStep.kind, params: ["width": .number(16), "height": .number(12), "filter": .string("bilinear")],
                                  inputs: [["image": try h.imageFile(source, name: "a.png")]])
        let ref = try #require(h.outputs(out[0])?["image"]?.image)
        let stored = try Image.load(contentsOf: h.media.url(hash: ref.hash, ext: ref.ext))
        #expect(stored == source.resized(width: 16, height: 12, filter: .bilinear))
    }

    @Test func thumbnailCoverModeCropsToTheExactSize() async throws {
        let h = try StepHarness()
        let out = try await h.run(ThumbnailStep.kind, params: ["width": .number(20), "height": .number(20), "mode": .string("cover")],
                                  inputs: [["image": try h.imageFile(StepHarness.gradient(60, 30), name: "b.png")]])
        let ref = try #require(h.outputs(out[0])?["image"]?.image)
        let stored = try Image.load(contentsOf: h.media.url(hash: ref.hash, ext: ref.ext))
        #expect(stored.width == 20 && stored.height == 20)
    }

    @Test func pixelScoresHaveKnownValues() async throws {
        let h = try StepHarness()
        let a = Image(width: 16, height: 16, channels: 3, fill: 100)
        let b = Image(width: 16, height: 16, channels: 3, fill: 110)
        let ia = try h.imageFile(a, name: "a.png"), ib = try h.imageFile(b, name: "b.png")
        let psnr = try await h.run(ScoreStep.kind, params: ["metric": .string("psnr")], inputs: [["a": ia, "b": ib], ["a": ia, "b": ia]])
        // MSE 100 → 10·log10(255² / 100)
        #expect(abs((h.outputs(psnr[0])?["score"]?.number ?? 0) - 28.130803608679106) < 1e-9)
        #expect(h.outputs(psnr[1])?["score"]?.number == .infinity)
        let ssim = try await h.run(ScoreStep.kind, params: ["metric": .string("ssim")], inputs: [["a": ia, "b": ia]])
        #expect(abs((h.outputs(ssim[0])?["score"]?.number ?? 0) - 1) < 1e-12)
    }

    @Test func scoreRejectsNonImages() async throws {
        let h = try StepHarness()
        let out = try await h.run(ScoreStep.kind, params: ["metric": .string("psnr")], inputs: [["a": .text("x"), "b": .text("y")]])
        #expect(h.error(out[0])?.contains("inputs a and b must be image columns") == true)
    }

    @Test func commandCollectsImagesTextAndNumbers() async throws {
        let h = try StepHarness()
        let img = try h.imageFile(StepHarness.gradient(8, 8), name: "c.png")
        let copy = try await h.run(CommandStep.kind, params: ["run": .array([.string("cp"), .string("{image}"), .string("{out}")]),
                                                              "output": .string("image")], inputs: [["image": img]])
        #expect(h.outputs(copy[0])?["image"]?.image?.hash == img.image?.hash)
        let number = try await h.run(CommandStep.kind, params: ["run": .array(["sh", "-c", "echo $(( {a} * 2 ))"].map(JSONValue.string)),
                                                                "output": .string("number")], inputs: [["a": .text("21")]])
        #expect(h.outputs(number[0])?["number"] == .number(42))
        let env = try await h.run(CommandStep.kind, params: ["run": .array(["sh", "-c", "echo $GREETING"].map(JSONValue.string)),
                                                             "env": .array([.string("GREETING=hello {text}")])], inputs: [["text": .text("panel")]])
        #expect(h.outputs(env[0])?["text"] == .text("hello panel"))
    }

    @Test func commandFailuresKeepStderrAndTimeOut() async throws {
        let h = try StepHarness()
        let failing = try await h.run(CommandStep.kind, params: ["run": .array(["sh", "-c", "echo broken >&2; exit 4"].map(JSONValue.string))], inputs: [[:]])
        #expect(h.error(failing[0]) == "sh exited with status 4: broken")
        let slow = try await h.run(CommandStep.kind, params: ["run": .array(["sleep", "5"].map(JSONValue.string)), "timeout": .number(0.3)], inputs: [[:]])
        #expect(h.error(slow[0])?.contains("timed out after 0.3 s") == true)
        let noImage = try await h.run(CommandStep.kind, params: ["run": .array(["true"].map(JSONValue.string)), "output": .string("image")], inputs: [[:]])
        #expect(h.error(noImage[0])?.contains("wrote no image") == true)
        let garbage = try await h.run(CommandStep.kind, params: ["run": .array(["sh", "-c", "echo notanimage > {out}"].map(JSONValue.string)),
                                                                 "output": .string("image")], inputs: [[:]])
        #expect(h.error(garbage[0])?.contains("unreadable image") == true)
    }

    @Test func templateJoinsListsAndRejectsImages() async throws {
        let h = try StepHarness()
        let out = try await h.run(TemplateStep.kind, params: ["template": .string("{texts} / {text}"), "separator": .string("|")],
                                  inputs: [["texts": .list([.text("a"), .text("b")]), "text": .text("c")],
                                           ["text": .image(ImageRef(hash: "0", ext: "png"))]])
        #expect(h.outputs(out[0])?["text"] == .text("a|b / c"))
        #expect(h.error(out[1])?.contains("input text is not text") == true)
    }
}

@Suite struct EvaluationStepTests {
    @Test("template: {rounds} is the first N rounds as GILL writes them; a malformed rounds input fails its item")
    func templateRounds() async throws {
        let h = try StepHarness()
        let rounds: Value = .list([.list([.text("What colour?"), .text("Red.")]), .list([.text("Big?"), .text("No.")])])
        let out = try await h.run(TemplateStep.kind, params: ["template": .string("{text} {rounds}"), "rounds": .number(1)],
                                  inputs: [["text": .text("A box."), "rounds": rounds], ["rounds": .list([.text("x")])]])
        #expect(h.outputs(out[0])?["text"] == .text("A box. Q: What colour? A: Red."))
        #expect(h.error(out[1])?.contains("not a list of [question, answer]") == true)
        let all = try await h.run(TemplateStep.kind, params: ["template": .string("{rounds}")], inputs: [["rounds": rounds]])
        #expect(h.outputs(all[0])?["text"] == .text("Q: What colour? A: Red. Q: Big? A: No."))
        // GILL's VisDial form: "?" added where missing, one line per question and answer.
        let gill = try await h.run(TemplateStep.kind, params: ["template": .string("{rounds}"), "rounds_style": .string("gill")],
                                   inputs: [["rounds": .list([.list([.text("what colour"), .text("red")]), .list([.text("Big?"), .text("No.")])])]])
        #expect(h.outputs(gill[0])?["text"] == .text("Q: what colour?\nA: red\nQ: Big?\nA: No."))
    }

    @Test("decision-oracle: the higher score wins (ties retrieve); correct says whether the decision agreed")
    func decisionOracle() async throws {
        let h = try StepHarness()
        let out = try await h.run(DecisionOracleStep.kind, params: [:], inputs: [
            ["generated": .number(0.9), "retrieved": .number(0.5), "decision": .choice("generate", probability: 0.7)],
            ["generated": .number(0.4), "retrieved": .number(0.5), "decision": .choice("generate", probability: 0.6)],
            ["generated": .number(0.5), "retrieved": .number(0.5)],
            ["generated": .text("x"), "retrieved": .number(0.5)],
        ])
        #expect(h.outputs(out[0])?["oracle"] == .choice("generate", probability: 1))
        #expect(h.outputs(out[0])?["correct"] == .number(1))
        #expect(h.outputs(out[1])?["generate_wins"] == .number(0))
        #expect(h.outputs(out[1])?["correct"] == .number(0))
        #expect(h.outputs(out[2])?["oracle"] == .choice("retrieve", probability: 1))
        #expect(h.outputs(out[2])?["correct"] == nil)
        #expect(h.error(out[3])?.contains("must be numbers") == true)
    }

    @Test("retrieve: ranks the pool, gives the own panel's rank, skips the own story on request, and names the top panel's image")
    func retrieveTopImage() async throws {
        let h = try StepHarness()
        // Two stories of two panels; panel images are files under the collection root.
        var entries: [Entry] = []
        for s in 1...2 {
            var panels: [Panel] = []
            for p in 1...2 {
                let name = "s\(s)p\(p).png"
                try StepHarness.gradient(8, 8, shift: 40 * (2 * s + p)).write(to: h.root.appendingPathComponent(name))
                panels.append(Panel(image: name, text: "panel \(p)"))
            }
            entries.append(Entry(id: "s\(s)", kind: .story, panels: panels))
        }
        let collection = StoryCollection(name: "c", root: h.root, entries: entries)
        func config(_ exclude: Bool) -> StepConfiguration {
            StepConfiguration(stepID: "r", kind: "retrieve", params: ["k": .number(2), "exclude_same_entry": .bool(exclude)], model: nil,
                              collection: collection, workflowFolder: h.root, media: h.media, allowOutsideRoot: false)
        }
        let pool: [(id: String, value: Value)] = [("s1#1", .vector([1, 0])), ("s1#2", .vector([0.8, 0.6])),
                                                  ("s2#1", .vector([0, 1])), ("s2#2", .vector([0.6, 0.8]))]
        let item = StepItem(id: "s1#2", entry: entries[0], panelIndex: 1, inputs: ["query": .vector([1, 0])], pools: ["pool": pool], seed: 0)
        let ctx = StepServices(media: h.media, isCancelled: { false })
        let out = try await RetrieveStep.kind.makeRunner(config(false)).run([item], services: ctx)
        let o = try #require(h.outputs(out[0]))
        #expect(o["ranked"] == .ranked([Candidate(id: "s1#1", score: 1), Candidate(id: "s1#2", score: Double(Float(0.8)))]))
        #expect(o["target_rank"] == .number(2) && o["hit_at_1"] == .number(0) && o["hit_at_k"] == .number(1))
        let url = h.root.appendingPathComponent("s1p1.png")
        let hash = try Hashing.sha256Hex(fileAt: url)
        #expect(o["top_image"] == .image(ImageRef(hash: hash, ext: "png")))
        #expect(try Data(contentsOf: h.media.url(hash: hash, ext: "png")) == Data(contentsOf: url))   // copied into the media store
        let other = try #require(h.outputs(try await RetrieveStep.kind.makeRunner(config(true)).run([item], services: ctx)[0]))
        #expect(other["top_image"]?.image?.hash == (try Hashing.sha256Hex(fileAt: h.root.appendingPathComponent("s2p2.png"))))
        #expect(other["target_rank"] == nil)
    }

    @Test("retrieve with exclude_context: the panels before the query's own in its story are not candidates, the rest are")
    func retrieveExcludesContext() async throws {
        let h = try StepHarness()
        let entry = Entry(id: "s1", kind: .story, panels: (1...3).map { Panel(image: nil, text: "panel \($0)") })
        let other = Entry(id: "s2", kind: .story, panels: [Panel(image: nil, text: "other")])
        let collection = StoryCollection(name: "c", root: h.root, entries: [entry, other])
        let config = StepConfiguration(stepID: "r", kind: "retrieve", params: ["k": .number(3), "exclude_context": .bool(true)], model: nil,
                                       collection: collection, workflowFolder: h.root, media: h.media, allowOutsideRoot: false)
        // The earlier panels s1#1 and s1#2 score highest; the query is s1#3.
        let pool: [(id: String, value: Value)] = [("s1#1", .vector([1, 0])), ("s1#2", .vector([0.9, 0.1])),
                                                  ("s1#3", .vector([0.6, 0.8])), ("s2#1", .vector([0, 1]))]
        let item = StepItem(id: "s1#3", entry: entry, panelIndex: 2, inputs: ["query": .vector([1, 0])], pools: ["pool": pool], seed: 0)
        let out = try await RetrieveStep.kind.makeRunner(config).run([item], services: StepServices(media: h.media, isCancelled: { false }))
        let o = try #require(h.outputs(out[0]))
        #expect(o["ranked"] == .ranked([Candidate(id: "s1#3", score: Double(Float(0.6))), Candidate(id: "s2#1", score: 0)]))
        #expect(o["target_rank"] == .number(1) && o["hit_at_1"] == .number(1))
        // An entry query has no panels before it: a clear error, not a silent no-op.
        let whole = StepItem(id: "s1", entry: entry, panelIndex: nil, inputs: ["query": .vector([1, 0])], pools: ["pool": pool], seed: 0)
        let failed = try await RetrieveStep.kind.makeRunner(config).run([whole], services: StepServices(media: h.media, isCancelled: { false }))
        guard case .failure(let message) = failed[0] else { Issue.record("an entry query with exclude_context should fail"); return }
        #expect(message.contains("exclude_context needs a panel query"))
    }
}
