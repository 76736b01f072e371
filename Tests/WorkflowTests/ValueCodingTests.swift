import Foundation
import Testing
@testable import Workflow

/// Stored outputs stay decodable: results written before `.record` existed decode as before, and a
/// gill-story sequence (texts and records in a list) round-trips through the store's JSON coding.
@Suite struct ValueCodingTests {
    @Test func recordsRoundTripAndOlderResultsDecode() throws {
        let sequence: Value = .list([
            .text("It rolls on."),
            .record(["image": .image(ImageRef(hash: "ab", ext: "png")), "decision": .choice("generate", probability: 0.8),
                     "retrieved": .ranked([Candidate(id: "s#2", score: 7.5)]), "p_generate": .number(0.8)]),
        ])
        let data = try OutputCoding.encoder.encode(["sequence": sequence])
        #expect(try OutputCoding.decoder.decode(Outputs.self, from: data) == ["sequence": sequence])
        let older = #"{"caption":{"text":"a ball"},"d":{"choice":"retrieve","probability":0.6},"l":{"list":[{"number":1}]}}"#
        let decoded = try OutputCoding.decoder.decode(Outputs.self, from: Data(older.utf8))
        #expect(decoded == ["caption": .text("a ball"), "d": .choice("retrieve", probability: 0.6), "l": .list([.number(1)])])
    }
}
