package zigbee

import (
	"crypto/aes"
	"crypto/subtle"
	"encoding/binary"
)

// WellKnownLinkKey is the Zigbee 3.0 / Home Automation default trust
// centre link key, "ZigBeeAlliance09". A network key transported under it
// can be recovered by anyone who captured the join.
var WellKnownLinkKey = [16]byte{'Z', 'i', 'g', 'B', 'e', 'e', 'A', 'l', 'l', 'i', 'a', 'n', 'c', 'e', '0', '9'}

// mmoHash is the Matyas-Meyer-Oseas hash of the Zigbee specification
// (B.6): AES-128 in MMO mode with Merkle-Damgård padding (a 1 bit, zeros,
// the bit length in 16 bits).
func mmoHash(m []byte) [16]byte {
	msg := append([]byte{}, m...)
	msg = append(msg, 0x80)
	for len(msg)%16 != 14 {
		msg = append(msg, 0)
	}
	msg = binary.BigEndian.AppendUint16(msg, uint16(len(m)*8))
	var h [16]byte
	for i := 0; i < len(msg); i += 16 {
		c, _ := aes.NewCipher(h[:])
		var out [16]byte
		c.Encrypt(out[:], msg[i:i+16])
		for j := range out {
			h[j] = out[j] ^ msg[i+j]
		}
	}
	return h
}

// hmacMMO is HMAC over the MMO hash with a 16-byte key (block size 16).
func hmacMMO(key [16]byte, m []byte) [16]byte {
	var ipad, opad [16]byte
	for i := range key {
		ipad[i] = key[i] ^ 0x36
		opad[i] = key[i] ^ 0x5c
	}
	inner := mmoHash(append(ipad[:], m...))
	return mmoHash(append(opad[:], inner[:]...))
}

// keyTransportKey derives the key that protects APS Transport-Key
// commands (key identifier 2) from a link key.
func keyTransportKey(link [16]byte) [16]byte { return hmacMMO(link, []byte{0x00}) }

// keyLoadKey derives the key for key identifier 3.
func keyLoadKey(link [16]byte) [16]byte { return hmacMMO(link, []byte{0x02}) }

// ccmStar runs AES-CCM* with a 13-byte nonce and a 4-byte MIC (Zigbee's
// security level 5): it encrypts data (decrypt false) or decrypts and
// verifies data = ciphertext||MIC (decrypt true). It returns false when
// the MIC does not verify.
func ccmStar(key [16]byte, nonce [13]byte, aad, data []byte, decrypt bool) ([]byte, bool) {
	return ccm(key, nonce, aad, data, decrypt, 4)
}

// ccm is AES-CCM (RFC 3610) with L=2 and a micLen-byte tag.
func ccm(key [16]byte, nonce [13]byte, aad, data []byte, decrypt bool, micLen int) ([]byte, bool) {
	block, _ := aes.NewCipher(key[:])
	var msg, mic []byte
	if decrypt {
		if len(data) < micLen {
			return nil, false
		}
		msg = make([]byte, len(data)-micLen)
		mic = data[len(data)-micLen:]
	} else {
		msg = make([]byte, len(data))
	}
	// Counter mode: A_i = flags(L-1) || nonce || i.
	var a, s [16]byte
	a[0] = 1
	copy(a[1:], nonce[:])
	ctr := func(i int) [16]byte {
		binary.BigEndian.PutUint16(a[14:], uint16(i))
		var out [16]byte
		block.Encrypt(out[:], a[:])
		return out
	}
	src := data[:len(msg)]
	for i := 0; i < len(msg); i += 16 {
		s = ctr(i/16 + 1)
		for j := i; j < len(msg) && j < i+16; j++ {
			msg[j] = src[j] ^ s[j-i]
		}
	}
	plain := msg
	if !decrypt {
		plain = data
	}
	// CBC-MAC over B0, the associated data and the message.
	var x [16]byte
	var b0 [16]byte
	b0[0] = byte(8*((micLen-2)/2) + 1)
	if len(aad) > 0 {
		b0[0] |= 0x40
	}
	copy(b0[1:], nonce[:])
	binary.BigEndian.PutUint16(b0[14:], uint16(len(plain)))
	mac := func(blk []byte) {
		for i := range x {
			if i < len(blk) {
				x[i] ^= blk[i]
			}
		}
		block.Encrypt(x[:], x[:])
	}
	mac(b0[:])
	if len(aad) > 0 {
		ad := binary.BigEndian.AppendUint16(nil, uint16(len(aad)))
		ad = append(ad, aad...)
		for i := 0; i < len(ad); i += 16 {
			mac(ad[i:min(i+16, len(ad))])
		}
	}
	for i := 0; i < len(plain); i += 16 {
		mac(plain[i:min(i+16, len(plain))])
	}
	s0 := ctr(0)
	tag := make([]byte, micLen)
	for i := range tag {
		tag[i] = x[i] ^ s0[i]
	}
	if decrypt {
		return msg, subtle.ConstantTimeCompare(tag, mic) == 1
	}
	return append(msg, tag...), true
}
