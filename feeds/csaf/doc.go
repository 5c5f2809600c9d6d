// Package csaf imports CSAF 2.0 security advisories (the format ICS and IoT
// vendors publish, e.g. CISA ICS advisories, Siemens ProductCERT). The
// product tree is walked branch by branch; a product is identified by its
// product_identification_helper (cpe or purl) or else by the vendor and
// product_name branches above it, which become a CPE vendor and product.
// product_version branches give exact versions, product_version_range
// branches give "vers:" ranges. Each vulnerability with known_affected
// products becomes one advisory per CVE; fixed products give the version to
// update to.
package csaf
