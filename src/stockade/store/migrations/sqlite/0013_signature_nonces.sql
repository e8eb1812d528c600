-- Scale-out (issue 15): nonces of signed requests seen within the signature window, shared by
-- every controller, so that a signed request replayed to another controller is refused too.
CREATE TABLE signature_nonces (
    nonce TEXT PRIMARY KEY,
    seen_ms BIGINT NOT NULL
);
CREATE INDEX signature_nonces_seen ON signature_nonces (seen_ms);
