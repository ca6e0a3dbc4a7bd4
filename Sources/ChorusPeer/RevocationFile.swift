import ChorusCrypto
import ChorusMembership
import ChorusWire
import Foundation

/// Revocations as text: one signed `revoked` claim per line in hexadecimal, `#` comments. What
/// `chorus revoke` writes, `POST /revocations` takes, and a peer keeps beside its checkpoint
/// (`<checkpoint>.revocations`) so that a restart still refuses the revoked.
public enum RevocationFile {
    public struct Malformed: Error, CustomStringConvertible {
        public let description: String
    }

    public static func text(_ revocations: [Claim]) -> String {
        var out = "# Chorus revocations, signed by the network authority (chorus revoke): one per line\n"
        for claim in revocations {
            var w = ByteWriter(capacity: claim.encodedSize)
            claim.write(to: &w)
            out += "# peer \(claim.subject)\n\(Hex.encode(w.bytes))\n"
        }
        return out
    }

    /// Every line a revocation, strictly decoded (`what` names the source in errors).
    public static func parse(_ text: String, what: String) throws(Malformed) -> [Claim] {
        var claims: [Claim] = []
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            guard !line.isEmpty, !line.hasPrefix("#") else { continue }
            guard let bytes = Hex.decode(line) else {
                throw Malformed(description: "\(what): line \(number + 1): not hexadecimal")
            }
            var r = ByteReader(bytes)
            guard let claim = Claim.read(from: &r), (try? r.finish()) != nil, claim.status == .revoked else {
                throw Malformed(description: "\(what): line \(number + 1): not a revocation (chorus revoke writes them)")
            }
            claims.append(claim)
        }
        return claims
    }

    /// Reads a file of revocations; none when it does not exist.
    public static func load(from path: String) throws(Malformed) -> [Claim] {
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        guard let data = FileManager.default.contents(atPath: path) else { throw Malformed(description: "\(path): cannot read") }
        return try parse(String(decoding: data, as: UTF8.self), what: path)
    }
}
