//! Fixed test keys and vectors. The RSA key was generated for this suite (it protects
//! nothing); the other vectors come from the RFCs and NIST documents named beside them.

/// RSA-2048 test key: modulus.
pub const RSA_N: &str = "\
    98b4fac3e3c290783e532109350576b1e78897b757ff996c67e365d3e4dd54b48130cba93a05831c8216bb385a4b359d
    fc43df5570ee4a2457ffed72bfe0494b34aa87334c98b601e937eba9564a912db4307de79946cfa16b166250cf6de54a
    4fdfca529ebaa9bc6cba1b3bbd5a87d2d94491df9fc0267d1fe64697bb6732a4f4f09881b19e69c85999d8c97dd84c2c
    3ed55b4b839332453a14bdec5a1d327654224ea933c65c752d03595c7cc32f0c466838767a63e333de95a583dc13d54a
    ecccde19738169edfd066a63f96cba4955ccc916ac2a3951002b2b66cec149fa328a0c57782c06e32002e01dffe5f0c7
    b1aa70b7ced70fef2bffd55acd6957c5";
/// RSA-2048 test key: publicExponent.
pub const RSA_E: &str = "\
    010001";
/// RSA-2048 test key: privateExponent.
pub const RSA_D: &str = "\
    10ff7c3657e0ed71e5061dd447899f27b86d14ee3ca65fee9835d0bce069dea6e506887502d7603bc9233c9dce3736f5
    aa01e8173ba5daace6fabef499f51e5377be4fa45f2f547b2bf9a48ac9e72cf7d869d969f13ed797d132c1a8db1e117a
    cf1f4b071d520bd8c48586c8849052341f2929cfa9999aef2ca0d654c7707a4b8429ea81ea009630870f73ee4f6f5eb1
    8c8a3de68cea6e9c7c4b43efd81a683281687ff63d970039eb5e909afbdede792fb6777c499e659e55d6d45d63842a6e
    7b21d48ba42e3872bd19aeb76cf0c05c55caa80cb5cfc01377e09a684121a82118e1793a180f714e168326e950146fe3
    492ce015e93266602fe915292d618281";
/// RSA-2048 test key: prime1.
pub const RSA_P: &str = "\
    d69f311742a5ad6ba971ac603d2fdcd7dec11836ed9e3d37824c3fb4208305fef0b63cc6b60ef8d2c63dafa0f14832df
    a78afd480b95a71099183459d5bbb971864b7a38b36bc013da88c75185a1ea114596f445e7d93298fd0208e746739574
    1aa04abad77a05a7534c27fae7219ca9484c74821232b65ad1edc98e726fb7e5";
/// RSA-2048 test key: prime2.
pub const RSA_Q: &str = "\
    b625ef94aac070cdc8561c22f30b642c4a9c1ff5c7ede29909df936963637d2ea7c83eb4fde6a15470a6b658be1fc47b
    02bfec0570ec171fe2f1c4416f8838f40d0b2cbb240872564ed53c0064466f0b749340d14355d67e7654f4912a423883
    f3d165f71f0b715ee60ac93ef5e4ca51f5d63cf68f778d400cae976321036261";
/// RSA-2048 test key: exponent1.
pub const RSA_DP: &str = "\
    76c99b5125792f98042bbf5d70e039da5d1700c0fe197406721ea3af9dc3072188b744c232e7ec7e346cd5f53d3659ba
    023062696ac804b4a2178c7a205b0b93b2e1b99f026763e359341525a0d1f20c6738dab08a5763b2db6e31e157d40767
    40897173226a0e110380862c4f9b01eb8bf18d16a4dddea23bc8e1a2eee1b8a5";
/// RSA-2048 test key: exponent2.
pub const RSA_DQ: &str = "\
    451f2449c07a82d434a028d14276222f84a8b6a0289ca78ef7e636249a28d90a69755e06850b8e5162e680f0304611e3
    b4696c81ac168bb7f801533e99ba92125b18d082bbebd0a7dc06a35c6ab127d6ab086e627b3109d2b7c9097e4511182d
    4acb3dec87856a225f1ddcbcddc752d7c378e76d918806bc3593d3b33485fa41";
/// RSA-2048 test key: coefficient.
pub const RSA_QINV: &str = "\
    64ee9d359c6f2919e36eb20b78f15647b86fef068ade06454d37f3906efe8293ff0b2153e4e0acea24eb1e3eb62be012
    2eb29514789743ab7bdab1708a8060c54860506f8705b557119d7121262a2d8b5dbc70123855a20d5643e52d3b21c393
    74b6ce596224a0b5a4393e89092e66a61507cdb4690159af96a039de671811a8";
/// The same RSA key as PKCS#8 DER (for independent checks with aws-lc).
pub const RSA_PKCS8: &str = "\
    308204bc020100300d06092a864886f70d0101010500048204a6308204a2020100028201010098b4fac3e3c290783e53
    2109350576b1e78897b757ff996c67e365d3e4dd54b48130cba93a05831c8216bb385a4b359dfc43df5570ee4a2457ff
    ed72bfe0494b34aa87334c98b601e937eba9564a912db4307de79946cfa16b166250cf6de54a4fdfca529ebaa9bc6cba
    1b3bbd5a87d2d94491df9fc0267d1fe64697bb6732a4f4f09881b19e69c85999d8c97dd84c2c3ed55b4b839332453a14
    bdec5a1d327654224ea933c65c752d03595c7cc32f0c466838767a63e333de95a583dc13d54aecccde19738169edfd06
    6a63f96cba4955ccc916ac2a3951002b2b66cec149fa328a0c57782c06e32002e01dffe5f0c7b1aa70b7ced70fef2bff
    d55acd6957c502030100010282010010ff7c3657e0ed71e5061dd447899f27b86d14ee3ca65fee9835d0bce069dea6e5
    06887502d7603bc9233c9dce3736f5aa01e8173ba5daace6fabef499f51e5377be4fa45f2f547b2bf9a48ac9e72cf7d8
    69d969f13ed797d132c1a8db1e117acf1f4b071d520bd8c48586c8849052341f2929cfa9999aef2ca0d654c7707a4b84
    29ea81ea009630870f73ee4f6f5eb18c8a3de68cea6e9c7c4b43efd81a683281687ff63d970039eb5e909afbdede792f
    b6777c499e659e55d6d45d63842a6e7b21d48ba42e3872bd19aeb76cf0c05c55caa80cb5cfc01377e09a684121a82118
    e1793a180f714e168326e950146fe3492ce015e93266602fe915292d61828102818100d69f311742a5ad6ba971ac603d
    2fdcd7dec11836ed9e3d37824c3fb4208305fef0b63cc6b60ef8d2c63dafa0f14832dfa78afd480b95a71099183459d5
    bbb971864b7a38b36bc013da88c75185a1ea114596f445e7d93298fd0208e7467395741aa04abad77a05a7534c27fae7
    219ca9484c74821232b65ad1edc98e726fb7e502818100b625ef94aac070cdc8561c22f30b642c4a9c1ff5c7ede29909
    df936963637d2ea7c83eb4fde6a15470a6b658be1fc47b02bfec0570ec171fe2f1c4416f8838f40d0b2cbb240872564e
    d53c0064466f0b749340d14355d67e7654f4912a423883f3d165f71f0b715ee60ac93ef5e4ca51f5d63cf68f778d400c
    ae97632103626102818076c99b5125792f98042bbf5d70e039da5d1700c0fe197406721ea3af9dc3072188b744c232e7
    ec7e346cd5f53d3659ba023062696ac804b4a2178c7a205b0b93b2e1b99f026763e359341525a0d1f20c6738dab08a57
    63b2db6e31e157d4076740897173226a0e110380862c4f9b01eb8bf18d16a4dddea23bc8e1a2eee1b8a5028180451f24
    49c07a82d434a028d14276222f84a8b6a0289ca78ef7e636249a28d90a69755e06850b8e5162e680f0304611e3b4696c
    81ac168bb7f801533e99ba92125b18d082bbebd0a7dc06a35c6ab127d6ab086e627b3109d2b7c9097e4511182d4acb3d
    ec87856a225f1ddcbcddc752d7c378e76d918806bc3593d3b33485fa4102818064ee9d359c6f2919e36eb20b78f15647
    b86fef068ade06454d37f3906efe8293ff0b2153e4e0acea24eb1e3eb62be0122eb29514789743ab7bdab1708a8060c5
    4860506f8705b557119d7121262a2d8b5dbc70123855a20d5643e52d3b21c39374b6ce596224a0b5a4393e89092e66a6
    1507cdb4690159af96a039de671811a8";

/// RFC 8032 §7.1 test 1: secret key (seed).
pub const ED25519_1_SECRET: &str =
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
/// RFC 8032 §7.1 test 1: public key.
pub const ED25519_1_PUBLIC: &str =
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
/// RFC 8032 §7.1 test 1: signature of the empty message.
pub const ED25519_1_SIG: &str = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155\
    5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
/// RFC 8032 §7.1 test 2: secret key.
pub const ED25519_2_SECRET: &str =
    "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";
/// RFC 8032 §7.1 test 2: public key.
pub const ED25519_2_PUBLIC: &str =
    "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";
/// RFC 8032 §7.1 test 2: signature of the one-byte message 0x72.
pub const ED25519_2_SIG: &str = "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da\
    085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00";

/// RFC 4231 test case 6: the data (the key is 131 bytes of 0xaa).
pub const HMAC_6_DATA: &[u8] = b"Test Using Larger Than Block-Size Key - Hash Key First";
/// RFC 4231 test case 6: HMAC-SHA-256.
pub const HMAC_6_SHA256: &str = "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54";
/// RFC 4231 test case 6: HMAC-SHA-384.
pub const HMAC_6_SHA384: &str = "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f\
    3cd11f05033ac4c60c2ef6ab4030fe8296248df163f44952";
/// RFC 4231 test case 6: HMAC-SHA-512.
pub const HMAC_6_SHA512: &str = "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352\
    6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598";

/// The Galois/Counter Mode specification (McGrew, Viega), test cases 3 and 4: key.
pub const GCM_KEY: &str = "feffe9928665731c6d6a8f9467308308";
/// Test case 3: plaintext (test case 4 uses its first 60 bytes).
pub const GCM_PT: &str = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72\
    1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
/// Test cases 3 and 4: IV.
pub const GCM_IV: &str = "cafebabefacedbaddecaf888";
/// Test case 3: ciphertext || tag.
pub const GCM_3_CT: &str = "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e\
    21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985\
    4d5c2af327cd64a62cf35abd2ba6fab4";
/// Test case 4: AAD.
pub const GCM_4_AAD: &str = "feedfacedeadbeeffeedfacedeadbeefabaddad2";
/// Test case 4: ciphertext || tag.
pub const GCM_4_CT: &str = "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e\
    21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091\
    5bc94fbc3221a5db94fae95ae7121a47";

/// NIST SP 800-38A F.2.5 (CBC-AES256): key.
pub const CBC_KEY: &str = "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4";
/// F.2.5: IV.
pub const CBC_IV: &str = "000102030405060708090a0b0c0d0e0f";
/// F.2.5: plaintext (four blocks).
pub const CBC_PT: &str = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51\
    30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";
/// F.2.5 ciphertext, followed by the PKCS#7 padding block CKM_AES_CBC_PAD appends.
pub const CBC_PAD_CT: &str = "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d\
    39f23369a9d9bacfa530e26304231461b2eb05e2c39be9fcda6c19078c6a9d1b\
    3f461796d6b0d6b2e0c2a72b4d80e644";

/// RFC 3394 §4.6: 256-bit KEK.
pub const KW_KEK: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
/// RFC 3394 §4.6: 256-bit key data.
pub const KW_KEY: &str = "00112233445566778899aabbccddeeff000102030405060708090a0b0c0d0e0f";
/// RFC 3394 §4.6: ciphertext.
pub const KW_WRAPPED: &str = "28c9f404c4b810f4cbccb35cfb87f8263f5786e2d80ed326\
    cbc7f0e71a99f43bfb988b9b7a02dd21";
/// RFC 5649 §6: 192-bit KEK.
pub const KWP_KEK: &str = "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8";
/// RFC 5649 §6: 20-byte key.
pub const KWP_KEY: &str = "c37b7e6492584340bed12207808941155068f738";
/// RFC 5649 §6: wrapped.
pub const KWP_WRAPPED: &str = "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a";

/// FIPS 180-4 examples: SHA-1("abc").
pub const SHA1_ABC: &str = "a9993e364706816aba3e25717850c26c9cd0d89d";
/// SHA-224("abc").
pub const SHA224_ABC: &str = "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7";
/// SHA-256("abc").
pub const SHA256_ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
/// SHA-384("abc").
pub const SHA384_ABC: &str = "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded163\
    1a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7";
/// SHA-512("abc").
pub const SHA512_ABC: &str = "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
    2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";
/// SHA-256 of the empty string.
pub const SHA256_EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// DER OID of P-256 (CKA_EC_PARAMS).
pub const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// DER OID of P-384.
pub const P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
/// DER OID of P-521.
pub const P521: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];
/// DER OID of Ed25519 (id-Ed25519, 1.3.101.112).
pub const ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// A DER OID no token implements as a curve (1.2.3.4.5).
pub const BOGUS_CURVE: &[u8] = &[0x06, 0x04, 0x2a, 0x03, 0x04, 0x05];
