package scope

import (
	"net/url"
	"strings"
)

// checkS3Headers: ACL and grant headers change who may read, so they need
// the ACL action listed exactly; a copy source must be an object the role
// could itself address and read.
func (p *Policy) checkS3Headers(r *Request, loc s3Location, d *Decision) error {
	for name := range r.Header {
		lower := strings.ToLower(name)
		if lower == "x-amz-acl" || strings.HasPrefix(lower, "x-amz-grant-") {
			acl := "s3:PutObjectAcl"
			if loc.key == "" {
				acl = "s3:PutBucketAcl"
			}
			d.needExact, d.needReason = append(d.needExact, acl), "x-amz-acl and x-amz-grant-* set who may access"
			break
		}
	}
	srcs := r.Header.Values("X-Amz-Copy-Source")
	switch {
	case len(srcs) == 0 && len(r.Header.Values("X-Amz-Copy-Source-Range")) > 0:
		return denied("headers: x-amz-copy-source-range without x-amz-copy-source")
	case len(srcs) == 0:
		return nil
	case len(srcs) > 1:
		return denied("headers: more than one x-amz-copy-source")
	}
	return p.checkCopySource(srcs[0], loc, d)
}

// checkCopySource reads x-amz-copy-source as S3 does: /bucket/key,
// percent-encoded, with an optional ?versionId=.
func (p *Policy) checkCopySource(src string, loc s3Location, d *Decision) error {
	raw, _, _ := strings.Cut(src, "?")
	decoded, err := url.PathUnescape(raw)
	if err != nil {
		return bad("headers: x-amz-copy-source is not a valid path")
	}
	decoded = strings.TrimPrefix(decoded, "/")
	if strings.HasPrefix(decoded, "arn:") {
		return denied("headers: x-amz-copy-source names an access point ARN, which the scope cannot place; name the bucket and key")
	}
	bucket, key, _ := strings.Cut(decoded, "/")
	if bucket == "" || key == "" {
		return bad("headers: x-amz-copy-source must be /bucket/key")
	}
	if loc.vhost && bucket != loc.bucket && !matchScope(p.Hosts, bucket+"."+loc.hostSuffix) {
		return denied("headers: x-amz-copy-source names another bucket than the request's, whose host the role may not sign for (allowed_hosts: " + listOrNone(p.Hosts) + ")")
	}
	if len(p.Paths) > 0 && !MatchGlobs(p.Paths, s3Path(bucket, key)) {
		return denied("headers: x-amz-copy-source is outside the role's paths (allowed_paths: " + listOrNone(p.Paths) + ")")
	}
	d.needAlso = append(d.needAlso, d.Service+":GetObject")
	return nil
}
