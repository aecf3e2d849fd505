"""skopeo's trust model: policy.json, registries.d, simple signing (GPG) and sigstore (cosign).

The package answers one question for the copy engine, "is this image allowed?"
(:mod:`asyncsync.signature.evaluate`), after the source manifest is read and before the first
blob is written, and creates signatures for what a copy writes. It never does HTTP itself:
sources list signatures and destinations store them (lookaside directories, ``signature-N``
files, cosign ``.sig`` attachments), through the transports.

Modules: ``policy`` (policy.json -> frozen requirements, ``file:line`` errors; ``json_lines``
gives the lines), ``scopes`` (policy scopes per transport), ``identity`` (``signedIdentity``
rules), ``evaluate`` (the check), ``formats`` (signature blobs), ``payload`` (the signed JSON),
``gpg`` (the gpg binary, with timeouts), ``sigstore`` (cosign keys and signatures),
``registries_d`` (lookaside configuration).
"""
