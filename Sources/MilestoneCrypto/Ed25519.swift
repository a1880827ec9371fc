internal import COpenSSL

/// Ed25519 through the system OpenSSL (raw keys, EVP_DigestSign/Verify).
package enum Ed25519 {
    /// A new 32-byte private key (seed) from OpenSSL's CSPRNG.
    package static func generateSeed() throws -> [UInt8] {
        var seed = [UInt8](repeating: 0, count: 32)
        guard RAND_bytes(&seed, 32) == 1 else { throw CryptoError.last("RAND_bytes") }
        return seed
    }

    static func privateKey(_ seed: [UInt8]) throws -> OpaquePointer {
        precondition(seed.count == 32)
        guard let key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, seed, 32) else {
            throw CryptoError.last("EVP_PKEY_new_raw_private_key")
        }
        return key
    }

    package static func publicKey(seed: [UInt8]) throws -> [UInt8] {
        let key = try privateKey(seed)
        defer { EVP_PKEY_free(key) }
        var out = [UInt8](repeating: 0, count: 32)
        var len = 32
        guard EVP_PKEY_get_raw_public_key(key, &out, &len) == 1, len == 32 else {
            throw CryptoError.last("EVP_PKEY_get_raw_public_key")
        }
        return out
    }

    package static func sign(_ message: [UInt8], seed: [UInt8]) throws -> [UInt8] {
        let key = try privateKey(seed)
        defer { EVP_PKEY_free(key) }
        guard let ctx = EVP_MD_CTX_new() else { throw CryptoError.last("EVP_MD_CTX_new") }
        defer { EVP_MD_CTX_free(ctx) }
        guard EVP_DigestSignInit(ctx, nil, nil, nil, key) == 1 else { throw CryptoError.last("EVP_DigestSignInit") }
        var sig = [UInt8](repeating: 0, count: 64)
        var len = 64
        guard EVP_DigestSign(ctx, &sig, &len, message, message.count) == 1, len == 64 else {
            throw CryptoError.last("EVP_DigestSign")
        }
        return sig
    }

    /// Whether `signature` is a valid Ed25519 signature of `message` by `publicKey`.
    package static func verify(signature: [UInt8], message: [UInt8], publicKey: [UInt8]) -> Bool {
        guard signature.count == 64, publicKey.count == 32,
              let key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, publicKey, 32)
        else {
            ERR_clear_error()
            return false
        }
        defer { EVP_PKEY_free(key) }
        guard let ctx = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(ctx) }
        guard EVP_DigestVerifyInit(ctx, nil, nil, nil, key) == 1 else {
            ERR_clear_error()
            return false
        }
        let ok = EVP_DigestVerify(ctx, signature, 64, message, message.count) == 1
        ERR_clear_error()
        return ok
    }
}
