import Foundation
import Testing
@testable import Stories

@Suite struct JSONScannerTests {
    func parse(_ s: String) throws -> JSONValue { try JSONScanner.parse(Array(s.utf8)) }

    @Test func parsesWhatJSONDecoderParses() throws {
        let text = #"{"a":[1,-2.5e3,0,true,false,null],"b":"caf\u00e9 \ud83d\udc31 \"q\" \\ \/ \n\t","c":{"d":{}},"e":[],"ü":"ß"}"#
        let ours = try parse(text)
        let reference = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        #expect(ours == reference)
        #expect(ours["b"]?.stringValue == "café 🐱 \"q\" \\ / \n\t")
        #expect(ours["a"]?.arrayValue?[1] == .number(-2500))
    }

    @Test func rejectsMalformedJSON() {
        for bad in ["{", "[1,]", "{\"a\" 1}", "01", "1.", "\"\\x\"", "\"\\ud800\"", "tru", "[1] x", "\"a\nb\"", "-", "{\"a\":1,}"] {
            #expect(throws: JSONScanner.Failure.self, "accepted \(bad)") { try parse(bad) }
        }
    }

    @Test func collectionErrorsGiveLineAndColumn() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("scan-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try "{\"id\":\"a\",\"kind\":\"story\",\"panels\":[]}\n{\"id\":\"b\",\"kind\":\"story\",\"panels\":[}\n"
            .write(to: dir.appendingPathComponent("collection.jsonl"), atomically: true, encoding: .utf8)
        let error = #expect(throws: CollectionError.self) { try NativeCollection.read(at: dir) }
        #expect(error?.description.hasSuffix("collection.jsonl:2: invalid entry: not valid JSON (unexpected character at column 36)") == true)
    }
}
