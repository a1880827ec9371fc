import Foundation
import TestSupport
import Testing
@testable import MilestoneLedger

/// Issue 26: signed notes as C2SP has them (signatures of unknown keys
/// ignored, whatever their length), key names, and witnesses' cosignatures.
let cosignatureCheck = Paths.root.appendingPathComponent("Tests/python/cosignature_check.py").path

func cosignatureTool(_ args: [String]) -> Run { run("/usr/bin/env", ["python3", cosignatureCheck] + args) }

@Suite("Issue 26: cosignatures, witness keys, key names")
struct WitnessTests {
    @Test("keygen refuses names C2SP signed-note forbids: DEL, U+0085, space, '+', empty, a tab; nothing written")
    func keyNames() {
        let dir = TempDir()
        for name in ["log\u{7F}x", "log\u{85}x", "log x", "log+x", "", "log\tx", "log\u{A0}x", "log\u{200B}x"] {
            let r = cli(["keygen", "--name", name, "--out", dir.file("k")])
            #expect(r.code == 65, "\(name.unicodeScalars.map { $0.value }): \(r.stderr)")
            #expect(r.stderr.contains("key name") && r.stderr.contains("choose another --name"), "\(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir.file("k.key")))
        }
        let ok = cli(["keygen", "--name", "example.org/log-é✓", "--out", dir.file("k")])
        #expect(ok.code == 0, "\(ok.stderr)")
    }

    @Test("the documented cosignature example: witness key encoding and the signature line")
    func docVector() throws {
        let seed = SHA256.hash(Array("milestones docs witness".utf8)).withBytes { Array($0) }
        let w = try SignerKey(name: "witness.example", seed: seed, algorithm: .cosignatureV1)
        #expect(w.verifier.encoded == "witness.example+ccae6436+BL+SYX8JhmqBOqSh0ifCMnO2dV8aRjBW/o97/DWVCLkd")
        let body = "example.org/ai-factories\n2\nvBJpnaVYt5zZyt/YyHkcq0QV/t9okWAp+mENyVLCbbs=\nhead 86f472b9c98c1aacd2369f5868bff19bdcbe74f1c678a107b4fb1c99d99c068f\n"
        var note = SignedNote(body: body)
        try note.cosign(with: w, time: 1_760_000_000)
        #expect(note.text.hasSuffix("— witness.example zK5kNgAAAABo53gAi0AkNbjaLMXB8u6HOiFooogqdtV3uTzLYcjo3AOp9qZrCOuP3L02GxnGnj0zdR8GWhSjqUU6TQupkOGURi91CQ==\n"))
        #expect(note.cosignatureTime(by: w.verifier) == 1_760_000_000)
        // A witness key does not sign checkpoints, and a log key does not cosign.
        #expect(throws: KeyError.self) { try note.sign(with: w) }
        let log = try SignerKey(name: "example.org/ai-factories", seed: seed)
        #expect(throws: KeyError.self) { try note.cosign(with: log, time: 1) }
    }

    @Test("verify --checkpoint: cosignatures and unknown signatures of any length ignored; --quorum K met or not")
    func quorum() throws {
        let dir = TempDir()
        let ledger = fixtureLedger(in: dir)
        #expect(cli(["keygen", "--name", "example.org/nvidia-ai-factories", "--out", dir.file("log")]).code == 0)
        for w in ["w1", "w2", "w3"] {
            let r = cli(["keygen", "--witness", "--name", "witness.example/\(w)", "--out", dir.file(w)])
            #expect(r.code == 0, "\(r.stderr)")
            let vkey = String(decoding: bytes(dir.file("\(w).vkey")), as: UTF8.self)
            #expect(Data(base64Encoded: String(vkey.split(separator: "+", maxSplits: 2)[2].dropLast()))?.first == 0x04)
        }
        #expect(cli(["checkpoint", "--ledger", ledger, "--key", dir.file("log.key"), "--out", dir.file("plain")]).code == 0)
        // Cosigned by w1 and w2 (an independent implementation), plus lines of unknown keys: 5, 76 and 200 bytes.
        var note = String(decoding: bytes(dir.file("plain")), as: UTF8.self)
        for (i, step) in [["add", dir.file("w1.key"), "1760000000"], ["junk", "stranger.example", "5"],
                          ["add", dir.file("w2.key"), "1760000100"], ["junk", "witness.example/w9", "76"],
                          ["junk", "example.org/nvidia-ai-factories-old", "200"]].enumerated() {
            let file = dir.write("step\(i)", note)
            let r = cosignatureTool([step[0], file] + step.dropFirst())
            #expect(r.code == 0, "\(r.stderr)")
            note = r.stdout
        }
        let cosigned = dir.write("cosigned", note)
        let base = ["verify", "--ledger", ledger, "--checkpoint", cosigned, "--key", dir.file("log.vkey")]
        let plain = cli(base)
        #expect(plain.code == 0, "\(plain.stderr)")
        let ws = ["--witness", dir.file("w1.vkey"), "--witness", dir.file("w2.vkey"), "--witness", dir.file("w3.vkey")]
        #expect(cli(base + ws + ["--quorum", "2"]).code == 0)
        let three = cli(base + ws + ["--quorum", "3"])
        #expect(three.code == 1)
        #expect(three.stderr.contains("2 valid cosignatures of the 3 required") && three.stderr.contains("witness.example/w3"), "\(three.stderr)")
        #expect(cli(base + ws).code == 1)  // default quorum: all
        #expect(cli(base + ["--witness", dir.file("w3.vkey")]).code == 1)
        #expect(cli(base + ws + ["--quorum", "4"]).code == 64)
        #expect(cli(base + ["--quorum", "1"]).code == 64)
        // A witness key given as the log's key is named as such.
        let swapped = cli(["verify", "--ledger", ledger, "--checkpoint", cosigned, "--key", dir.file("w1.vkey")])
        #expect(swapped.code == 1 && swapped.stderr.contains("witness"), "\(swapped.stderr)")
        // A cosignature that does not verify (one byte of w2's signature changed) does not count.
        var lines = note.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let i = lines.firstIndex { $0.hasPrefix("— witness.example/w2 ") }!
        var raw = [UInt8](Data(base64Encoded: String(lines[i].split(separator: " ")[2]))!)
        raw[40] ^= 1
        lines[i] = "— witness.example/w2 " + Data(raw).base64EncodedString()
        let tampered = dir.write("tampered", lines.joined(separator: "\n"))
        #expect(cli(["verify", "--ledger", ledger, "--checkpoint", tampered, "--key", dir.file("log.vkey"), "--witness", dir.file("w2.vkey")]).code == 1)
        #expect(cli(["verify", "--ledger", ledger, "--checkpoint", tampered, "--key", dir.file("log.vkey")] + ws + ["--quorum", "1"]).code == 0)
        // One witness is one public key: the same file twice counts once (the default quorum is the
        // distinct keys), and a second name for the same key, with w1's signature copied under it, adds nothing.
        #expect(cli(base + ["--witness", dir.file("w1.vkey"), "--witness", dir.file("w1.vkey")]).code == 0)
        let alias = """
            import base64, hashlib, sys
            vkey, note = open(sys.argv[1]).read().strip(), open(sys.argv[2]).read()
            name, kid, raw = vkey.split("+", 2)
            new = "witness.example/alias"
            newkid = hashlib.sha256(new.encode() + b"\\n" + base64.b64decode(raw)).digest()[:4]
            open(sys.argv[3], "w").write("%s+%s+%s\\n" % (new, newkid.hex(), raw))
            line = [l for l in note.split("\\n") if l.startswith("\u{2014} " + name + " ")][0]
            sig = base64.b64decode(line.split(" ")[2])
            copy = "\u{2014} %s %s" % (new, base64.b64encode(newkid + sig[4:]).decode())
            open(sys.argv[4], "w").write(note.rstrip("\\n") + "\\n" + copy + "\\n")
            """
        let made = run("/usr/bin/env", ["python3", "-c", alias, dir.file("w1.vkey"), cosigned, dir.file("alias.vkey"), dir.file("aliased")])
        #expect(made.code == 0, "\(made.stderr)")
        let twice = cli(["verify", "--ledger", ledger, "--checkpoint", dir.file("aliased"), "--key", dir.file("log.vkey"),
                         "--witness", dir.file("w1.vkey"), "--witness", dir.file("alias.vkey"), "--quorum", "2"])
        #expect(twice.code == 1, "one witness under two names met a quorum of 2: \(twice.stderr)")
        // The log's own signature given twice: the first is checked, as Go's note.Open does.
        let plainText = String(decoding: bytes(dir.file("plain")), as: UTF8.self)
        let logLine = plainText.split(separator: "\n").last { $0.hasPrefix("\u{2014} ") }!
        let doubled = dir.write("doubled", plainText + logLine + "\n")
        #expect(cli(["verify", "--ledger", ledger, "--checkpoint", doubled, "--key", dir.file("log.vkey")]).code == 0)
        // verify-proof reads a cosigned checkpoint too.
        #expect(cli(["prove", "--ledger", ledger, "--seq", "3", "--bundle", "--checkpoint", cosigned, "--out", dir.file("b.json")]).code == 0)
        let vp = cli(["verify-proof", "--bundle", dir.file("b.json"), "--key", dir.file("log.vkey")])
        #expect(vp.code == 0, "\(vp.stderr)")
    }
}
