#ifndef MILESTONES_COPENSSL_SHIM_H
#define MILESTONES_COPENSSL_SHIM_H
/* SHA256_Init/Update/Final: deprecated in OpenSSL 3 in favour of EVP, but
   kept; they hash without EVP's fetch and provider dispatch (see SHA256.swift). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
#include <openssl/evp.h>
#include <openssl/err.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#endif
