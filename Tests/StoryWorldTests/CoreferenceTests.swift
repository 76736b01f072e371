import Testing
@testable import StoryWorld

/// The coreference property, measured with StoryWorld's own caption semantics (``Knowledge``).
///
/// Measure: take a set of N generated stories and the pool of their distinct final-panel scene graphs
/// (ids dropped). For each story, read (a) its last caption alone and (b) all five captions, and count
/// the pool scenes consistent with what was read. The story's own final scene is always consistent
/// (the interpreter is sound). The world has the property when the last caption alone leaves ≥ 2
/// scenes open in most stories (≥ 70%), while the five captions leave far fewer.
@Suite("StoryWorld coreference")
struct CoreferenceTests {
    @Test("the last caption alone under-determines the last picture; the whole story pins it down")
    func lastCaptionUnderdetermines() {
        let n = 500
        let stories = (0..<n).map { StoryPlanner.story(seed: 2024, index: $0) }
        var seen = Set<String>()
        let pool = stories.compactMap(\.scenes.last).filter { seen.insert($0.graphKey).inserted }
        var alone: [Int] = [], full: [Int] = []
        for story in stories {
            guard let last = story.scenes.last, let lastCaption = story.captions.last else { continue }
            let a = Knowledge.reading([lastCaption.utterance])
            let f = Knowledge.reading(story.captions.map(\.utterance))
            #expect(a.isConsistent(with: last), "last caption alone rejects its own picture: \(lastCaption.text)")
            #expect(f.isConsistent(with: last), "story rejects its own picture: \(story.captions.map(\.text))")
            #expect(f.ambiguities == 0 && f.accommodations == 0, "unresolved reference in \(story.captions.map(\.text))")
            alone.append(pool.filter(a.isConsistent).count)
            full.append(pool.filter(f.isConsistent).count)
        }
        let open = Double(alone.filter { $0 >= 2 }.count) / Double(alone.count)
        let fullOpen = Double(full.filter { $0 >= 2 }.count) / Double(full.count)
        let meanAlone = Double(alone.reduce(0, +)) / Double(alone.count)
        let meanFull = Double(full.reduce(0, +)) / Double(full.count)
        print("""
            coreference over \(n) stories (\(pool.count) distinct final scenes): \
            last caption alone: \(Int(open * 100))% of stories consistent with >=2 final scenes, \
            mean \(String(format: "%.1f", meanAlone)), median \(Support.median(alone)); \
            all five captions: \(Int(fullOpen * 100))% with >=2, mean \(String(format: "%.2f", meanFull)), median \(Support.median(full))
            """)
        #expect(open >= 0.7)
        #expect(meanFull * 10 < meanAlone)
        #expect(fullOpen < 0.2)
    }

    @Test("reading the whole story reconstructs the last scene, sizes aside when the captions omit them")
    func fullReadingMatchesTruth() {
        for index in 0..<300 {
            let story = StoryPlanner.story(seed: 77, index: index)
            guard let last = story.scenes.last else { continue }
            let k = Knowledge.reading(story.captions.map(\.utterance))
            #expect(k.backgrounds == [last.background])
            #expect(k.complete && k.entities.count == last.objects.count)
            #expect(k.entities.allSatisfy { $0.kinds.count == 1 && $0.colours.count == 1 && $0.positions.count == 1 })
        }
    }

    @Test("more dialogue rounds determine the scene better")
    func dialogueRoundsNarrow() {
        let n = 300
        let dialogues = (0..<n).map { DialoguePlanner.dialogue(seed: 99, index: $0) }
        var seen = Set<String>()
        let pool = dialogues.map(\.scene).filter { seen.insert($0.graphKey).inserted }
        var means: [Double] = []
        for rounds in 0...DialoguePlanner.rounds {
            var total = 0
            for d in dialogues {
                let k = Knowledge.reading([d.caption.utterance] + d.turns.prefix(rounds).map(\.utterance))
                #expect(k.isConsistent(with: d.scene), "dialogue rejects its own scene after \(rounds) rounds")
                total += pool.filter(k.isConsistent).count
            }
            means.append(Double(total) / Double(n))
        }
        print("dialogues: mean consistent scenes (of \(pool.count)) after 0...10 rounds: " + means.map { String(format: "%.1f", $0) }.joined(separator: " "))
        for r in 1..<means.count { #expect(means[r] <= means[r - 1]) }
        #expect(means[10] * 20 < means[0])
        #expect(means[5] < means[0] / 4 && means[10] < means[5])
    }
}
