import ArgumentParser
import ChorusCrypto
import ChorusMembership
import ChorusPeer
import Foundation

/// The authority's key, read with errors that name the option.
private func readAuthority(_ path: String) throws -> SigningKey {
    do { return try KeyFiles.readAuthority(at: path) } catch { throw UserError("--authority: \(error.description)") }
}

/// A peer named by its identity directory, its identity.public file, or its id in hex.
private func resolvePeer(_ text: String) throws -> PeerID {
    if let id = PeerID(text: text) { return id }
    do { return try KeyFiles.readPublicKey(at: text, defaultFile: KeyFiles.publicFileName) } catch {
        throw UserError("--peer: expected a peer id (64 hexadecimal characters), an identity directory or its identity.public: \(error.description)")
    }
}

struct CertifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "certify",
        abstract: "Certify a peer identity with the network authority, so that peers with admission admit it.",
        discussion: """
            Writes the certificate (96 bytes as hex; public) to --out, by default the peer's \
            identity directory (DIR/certificate). The peer names it in peer.certificate, beside \
            peer.authority = "AUTHORITY_DIR/authority.public". A peer with admission opens a \
            session only for identities whose hello shows a certificate of its authority \
            (docs/security.md, "Admission and revocation"). Certificates do not expire; remove \
            an identity with chorus revoke.

            Example:
              chorus keygen --authority --out keys/authority
              chorus certify --authority keys/authority --peer keys/peer1
            """
    )

    @Option(help: ArgumentHelp("The authority's directory (or its authority.secret).", valueName: "path"))
    var authority: String

    @Option(help: ArgumentHelp("The peer: its identity directory, identity.public, or id.", valueName: "peer"))
    var peer: String

    @Option(help: ArgumentHelp("Where to write the certificate (default: the identity directory's 'certificate').", valueName: "file"))
    var out: String?

    func run() throws {
        let key = try readAuthority(authority)
        let subject = try resolvePeer(peer)
        var isDirectory: ObjCBool = false
        let peerIsDirectory = FileManager.default.fileExists(atPath: peer, isDirectory: &isDirectory) && isDirectory.boolValue
        guard let destination = out ?? (peerIsDirectory ? (peer as NSString).appendingPathComponent(KeyFiles.certificateFileName) : nil) else {
            throw UserError("--out: needed when --peer is an id or a file (where should the certificate go?)")
        }
        do { try KeyFiles.writeCertificate(Certificate(subject: subject, authority: key), authority: key.peerID, to: destination) } catch {
            throw UserError(error.description)
        }
        print("wrote the certificate of \(subject) to \(destination); the peer names it in peer.certificate")
    }
}

struct RevokeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Revoke a peer identity with the network authority: every member drops it.",
        discussion: """
            Signs a revocation of the peer with the authority and writes it to --out, hands it \
            to a running peer (--admin, with that peer's --admin-token), or both. The peer \
            applies it and gossips it on: every member with that authority then drops the \
            revoked identity, refuses its datagrams, and keeps the revocation across restarts \
            (docs/security.md, "Admission and revocation", gives the measured time). The \
            revoked peer itself stops with an error saying so. A revocation is final: to take \
            part again, a host needs a new identity and a new certificate.

            A file written with --out can be handed over later, to any peer:
              chorus revoke --submit FILE --admin HOST:PORT --admin-token FILE

            Example:
              chorus revoke --authority keys/authority --peer 3f2a…64 hex… --admin 127.0.0.1:8001 --admin-token keys/peer1/admin.token
            """
    )

    @Option(help: ArgumentHelp("The authority's directory (or its authority.secret).", valueName: "path"))
    var authority: String?

    @Option(help: ArgumentHelp("The peer to revoke: its id, identity directory or identity.public.", valueName: "peer"))
    var peer: String?

    @Option(help: ArgumentHelp("Write the signed revocation to this file.", valueName: "file"))
    var out: String?

    @Option(help: ArgumentHelp("Hand over the revocations in this file (written by --out) instead of signing one.", valueName: "file"))
    var submit: String?

    @Option(help: ArgumentHelp("A running peer's admin address, to hand the revocation to.", valueName: "host:port"))
    var admin: String?

    @Option(help: ArgumentHelp("That peer's admin token file.", valueName: "file"))
    var adminToken: String?

    @Option(help: "Seconds to wait for the peer's answer.")
    var timeout: Double = 5

    func validate() throws {
        if submit != nil {
            if authority != nil || peer != nil || out != nil { throw ValidationError("--submit hands over a file: give it without --authority, --peer and --out") }
            if admin == nil { throw ValidationError("--submit needs --admin (and --admin-token)") }
        } else {
            if authority == nil || peer == nil { throw ValidationError("give --authority and --peer (or --submit FILE)") }
            if out == nil && admin == nil { throw ValidationError("give --out FILE, --admin HOST:PORT, or both: otherwise the revocation goes nowhere") }
        }
    }

    func run() throws {
        let text: String
        if let submit {
            guard let data = FileManager.default.contents(atPath: submit) else { throw UserError("--submit: cannot read \(submit)") }
            text = String(decoding: data, as: UTF8.self)
            do { _ = try RevocationFile.parse(text, what: submit) } catch { throw UserError(error.description) }
        } else {
            let key = try readAuthority(authority!)
            let subject = try resolvePeer(peer!)
            text = RevocationFile.text([Claim.make(.revoked, subject: subject, incarnation: 0, key: key)])
            if let out {
                guard !FileManager.default.fileExists(atPath: out) else { throw UserError("--out: \(out) already exists; refusing to overwrite it") }
                do { try text.write(toFile: out, atomically: true, encoding: .utf8) } catch { throw UserError("--out: cannot write \(out): \(error)") }
                print("wrote the revocation of \(subject) to \(out)")
            }
        }
        guard let admin else { return }
        guard let address = HostPort(parsing: admin) else { throw ValidationError("--admin: expected HOST:PORT, got \"\(admin)\"") }
        guard let adminToken else { throw UserError("--admin-token: handing over a revocation needs the peer's admin token (DIR/admin.token beside its identity)") }
        let token: String
        do { token = try KeyFiles.readAdminToken(at: adminToken) } catch { throw UserError("--admin-token: \(error.description)") }
        do {
            let response = try AdminClient.request("POST", "/revocations", body: Array(text.utf8), token: token, at: address, timeout: timeout)
            let answer = String(decoding: response.body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard response.status == 200 else { throw UserError("the peer at \(address) refused (HTTP \(response.status)): \(answer)") }
            print("\(answer) (handed to \(address); the members spread it)")
        } catch let error as AdminClient.Failure {
            throw UserError(error.description)
        }
    }
}
