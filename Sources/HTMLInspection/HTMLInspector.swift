import CLibXML2
import Foundation

/// Test support (not used by the product): a parsed HTML page (libxml2's HTML parser) with XPath queries, for asserting on the DOM a
/// browser would build rather than on strings.
public final class HTMLInspector {
    public let path: String
    private let document: htmlDocPtr

    public struct ParseError: Error, CustomStringConvertible {
        public var path: String
        public var description: String { "libxml2 could not parse \(path)" }
    }

    public init(path: String) throws {
        self.path = path
        let options = Int32(HTML_PARSE_NOERROR.rawValue | HTML_PARSE_NOWARNING.rawValue | HTML_PARSE_NONET.rawValue)
        guard let document = htmlReadFile(path, "UTF-8", options) else { throw ParseError(path: path) }
        self.document = document
    }

    deinit { xmlFreeDoc(document) }

    /// A matched node: element or attribute name, text content (attribute value), attributes.
    public struct Match {
        public var name: String
        public var content: String
        public var attributes: [String: String]
    }

    /// Nodes matching an XPath 1.0 expression.
    public func select(_ xpath: String) -> [Match] {
        guard let context = xmlXPathNewContext(document) else { return [] }
        defer { xmlXPathFreeContext(context) }
        guard let result = xmlXPathEvalExpression(xpath, context) else { return [] }
        defer { xmlXPathFreeObject(result) }
        guard let set = result.pointee.nodesetval, set.pointee.nodeNr > 0, let table = set.pointee.nodeTab else {
            return []
        }
        return (0..<Int(set.pointee.nodeNr)).compactMap { index in
            guard let node = table[index] else { return nil }
            return Match(name: Self.string(node.pointee.name), content: Self.content(node),
                         attributes: Self.attributes(node))
        }
    }

    /// Values of the matched nodes (attribute values, or element text content).
    public func values(_ xpath: String) -> [String] {
        select(xpath).map(\.content)
    }

    /// The number of nodes an XPath expression yields.
    public func count(_ xpath: String) -> Int {
        select(xpath).count
    }

    /// All text content of the page.
    public var text: String {
        values("/html").joined()
    }

    /// Names of every element in document order, each with its sorted attribute names:
    /// the page's structure without its text.
    public var structure: [String] {
        select("//*").map { match in
            ([match.name] + match.attributes.keys.sorted()).joined(separator: " ")
        }
    }

    private static func string(_ pointer: UnsafePointer<xmlChar>?) -> String {
        guard let pointer else { return "" }
        return String(cString: pointer)
    }

    /// Text content of a node (the value, for an attribute), read through an xmlBuffer so that
    /// nothing has to be released with libxml2's global `xmlFree` hook.
    private static func content(_ node: xmlNodePtr) -> String {
        guard let buffer = xmlBufferCreate() else { return "" }
        defer { xmlBufferFree(buffer) }
        guard xmlNodeBufGetContent(buffer, node) == 0, let bytes = xmlBufferContent(buffer) else { return "" }
        return String(cString: bytes)
    }

    private static func attributes(_ node: xmlNodePtr) -> [String: String] {
        guard node.pointee.type == XML_ELEMENT_NODE else { return [:] }
        var result: [String: String] = [:]
        var attribute = node.pointee.properties
        while let current = attribute {
            let name = string(current.pointee.name)
            result[name] = current.withMemoryRebound(to: xmlNode.self, capacity: 1) { content($0) }
            attribute = current.pointee.next
        }
        return result
    }
}
