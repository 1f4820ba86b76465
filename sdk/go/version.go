package vipay

// Version of this module (SemVer; sdk/CHANGELOG.md). Tagged sdk/go/vX.Y.Z.
const Version = "0.2.0"
