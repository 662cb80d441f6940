package scope

// mintingCases: operations that mint credentials or tokens, or change
// access, are signed only when listed exactly: never with no action list,
// never through a glob.
func mintingCases() []tcase {
	minting := []struct {
		op string
		r  req
	}{
		{"CreateSession", s3r("GET", "https://bucket.s3.us-east-1.amazonaws.com/?session")},
		{"CreateSession", req{url: "https://bucket--use1-az4--x-s3.s3express-use1-az4.us-east-1.amazonaws.com/?session", service: "s3express"}},
		{"GetAuthorizationToken", jsonReq("api.ecr.us-east-1.amazonaws.com", "ecr", "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken", "{}")},
		{"GetAuthorizationToken", req{method: "POST", url: "https://codeartifact.us-east-1.amazonaws.com/v1/authorization-token?domain=d", service: "codeartifact"}},
		{"connect", req{url: "https://db.cluster-x.us-east-1.rds.amazonaws.com:5432/?Action=connect&DBUser=app", service: "rds-db"}},
		{"connect", req{url: "https://mycache.serverless.use1.cache.amazonaws.com/?Action=connect&User=app", service: "elasticache"}},
		{"GetClusterCredentials", req{url: "https://redshift.us-east-1.amazonaws.com/?Action=GetClusterCredentials&DbUser=u", service: "redshift"}},
		{"SendSSHPublicKey", jsonReq("ec2-instance-connect.us-east-1.amazonaws.com", "ec2-instance-connect", "AWSEC2InstanceConnectService.SendSSHPublicKey", "{}")},
		{"StartSession", jsonReq("ssm.us-east-1.amazonaws.com", "ssm", "AmazonSSM.StartSession", "{}")},
		{"DbConnect", req{url: "https://abc.dsql.us-east-1.on.aws/?Action=DbConnect", service: "dsql"}},
		{"connect", req{url: "https://mycluster/?Action=connect&User=app", service: "memorydb"}},
		{"Connect", req{url: "https://kafka.us-east-1.amazonaws.com/?Action=kafka-cluster%3AConnect", service: "kafka-cluster"}},
		{"connect", req{url: "https://db.cluster-x.us-east-1.neptune.amazonaws.com:8182/gremlin", service: "neptune-db"}},
		{"GetFederationToken", req{url: "https://connect.us-east-1.amazonaws.com/user/federate/inst-1", service: "connect"}},
		{"GetCredentialsForIdentity", jsonReq("cognito-identity.us-east-1.amazonaws.com", "cognito-identity", "AWSCognitoIdentityService.GetCredentialsForIdentity", "{}")},
		{"PutBucketPolicy", s3r("PUT", "https://bucket.s3.us-east-1.amazonaws.com/?policy")},
	}
	var out []tcase
	for _, m := range minting {
		name := m.r.service + ":" + m.op
		out = append(out,
			tcase{name + " with no action list", "any", m.r, den, "mints credentials or changes access"},
			tcase{name + " through a glob", "globs", m.r, den, "mints credentials or changes access"},
			tcase{name + " through *", "star", m.r, den, "mints credentials or changes access"},
			tcase{name + " listed exactly", "exact", m.r, ok, m.op},
		)
	}
	return out
}

const pathHost = "https://s3.us-east-1.amazonaws.com"

// s3OpCases: S3's operation from method and subresource.
func s3OpCases() []tcase {
	up := func(method, path string, h ...string) req { return s3r(method, pathHost+path, h...) }
	return []tcase{
		{"upload an object", "upload", up("PUT", "/reports-bucket/2026/a.csv"), ok, "PutObject"},
		{"upload: bucket policy", "upload", up("PUT", "/reports-bucket/?policy"), den, "s3:PutBucketPolicy"},
		{"upload: bucket policy, no slash", "upload", up("PUT", "/reports-bucket?policy"), den, "s3:PutBucketPolicy"},
		{"upload: replication", "upload", up("PUT", "/reports-bucket/?replication"), den, "s3:PutBucketReplication"},
		{"upload: bucket ACL", "upload", up("PUT", "/reports-bucket/?acl"), den, "s3:PutBucketAcl"},
		{"upload: lifecycle", "upload", up("PUT", "/reports-bucket/?lifecycle"), den, "s3:PutBucketLifecycleConfiguration"},
		{"upload: object ACL", "upload", up("PUT", "/reports-bucket/a.csv?acl"), den, "s3:PutObjectAcl"},
		{"upload: ownership controls", "upload", up("PUT", "/reports-bucket/?ownershipControls"), den, "s3:PutBucketOwnershipControls"},
		{"upload: public access block", "upload", up("PUT", "/reports-bucket/?publicAccessBlock"), den, "s3:PutPublicAccessBlock"},
		{"upload: create the bucket", "upload", up("PUT", "/reports-bucket/"), den, "s3:CreateBucket"},
		{"upload: x-amz-acl", "upload", up("PUT", "/reports-bucket/a.csv", "x-amz-acl", "public-read"), den, "s3:PutObjectAcl"},
		{"upload: x-amz-grant-read", "upload", up("PUT", "/reports-bucket/a.csv", "X-Amz-Grant-Read", "id=1"), den, "s3:PutObjectAcl"},
		{"upload: tagging is not access", "upload", up("PUT", "/reports-bucket/a.csv?tagging"), ok, "PutObjectTagging"},
		{"upload: a subresource no model knows", "upload", up("PUT", "/reports-bucket/a.csv?newthing"), den, "does not read"},
		{"upload: x-id names the route's operation", "upload", up("PUT", "/reports-bucket/a.csv?x-id=PutObject"), ok, "PutObject"},
		{"upload: x-id names another", "upload", up("PUT", "/reports-bucket/a.csv?x-id=PutBucketPolicy"), den, "x-id"},
		{"upload: x-id twice", "upload", up("PUT", "/reports-bucket/a.csv?x-id=PutObject&x-id=PutObject"), den, "x-id"},
		{"upload: part", "upload", up("PUT", "/reports-bucket/a.csv?partNumber=1&uploadId=u"), ok, "UploadPart"},
		{"upload: DeleteObjects needs POST", "upload", up("POST", "/reports-bucket/?delete"), den, "method"},
		{"ACL listed: x-amz-acl", "s3acl", up("PUT", "/b/a.csv", "x-amz-acl", "private"), ok, "PutObject"},
		{"PutObject only: x-amz-acl", "s3put", up("PUT", "/b/a.csv", "x-amz-acl", "private"), den, "s3:PutObjectAcl"},
		{"s3:* and x-amz-acl", "s3all", up("PUT", "/b/a.csv", "x-amz-acl", "private"), den, "s3:PutObjectAcl"},
		{"s3:* and x-amz-grant on CreateBucket", "s3all", up("PUT", "/b", "x-amz-grant-full-control", "id=1"), den, "s3:CreateBucket"},
		{"PutObject only: GetObject", "s3put", up("GET", "/b/a.csv"), den, "s3:GetObject"},
		{"GetObject", "s3all", up("GET", "/b/a.csv"), ok, "GetObject"},
		{"GetObject with response overrides", "s3all", up("GET", "/b/a.csv?response-content-type=text%2Fplain&versionId=3"), ok, "GetObject"},
		{"HeadObject", "s3all", up("HEAD", "/b/a.csv"), ok, "HeadObject"},
		{"ListObjects", "s3all", up("GET", "/b"), ok, "ListObjects"},
		{"ListObjects, trailing slash", "s3all", up("GET", "/b/"), ok, "ListObjects"},
		{"ListObjectsV2", "s3all", up("GET", "/b?list-type=2&prefix=2026%2F"), ok, "ListObjectsV2"},
		{"ListBuckets", "s3all", up("GET", "/"), ok, "ListBuckets"},
		{"DeleteObject", "s3all", up("DELETE", "/b/a.csv"), ok, "DeleteObject"},
		{"DeleteObjects", "s3all", up("POST", "/b?delete"), ok, "DeleteObjects"},
		{"DeleteBucket", "s3all", up("DELETE", "/b"), den, "s3:DeleteBucket"},
		{"CreateMultipartUpload", "s3all", up("POST", "/b/a.csv?uploads"), ok, "CreateMultipartUpload"},
		{"CompleteMultipartUpload", "s3all", up("POST", "/b/a.csv?uploadId=u"), ok, "CompleteMultipartUpload"},
		{"GetBucketLifecycleConfiguration", "s3all", up("GET", "/b?lifecycle"), ok, "GetBucketLifecycleConfiguration"},
		{"GetBucketPolicy is a read", "s3all", up("GET", "/b?policy"), ok, "GetBucketPolicy"},
		{"two subresources", "s3all", up("GET", "/b?acl&policy"), den, "more than one"},
		{"a list-type other than 2", "s3all", up("GET", "/b?list-type=3"), den, "does not read"},
		{"CopyObject", "s3all", up("PUT", "/b/a.csv", "x-amz-copy-source", "/b/src.csv"), ok, "CopyObject"},
		{"UploadPartCopy", "s3all", up("PUT", "/b/a.csv?partNumber=1&uploadId=u", "x-amz-copy-source", "/b/src.csv"), ok, "UploadPartCopy"},
		{"an unknown method", "s3all", up("PATCH", "/b/a.csv"), den, "no S3 operation"},
		{"a target header on S3", "s3all", up("GET", "/b/a.csv", "X-Amz-Target", "x.GetObject"), den, "X-Amz-Target"},
		{"the query's Action on S3", "s3all", up("GET", "/b/a.csv?Action=PutBucketPolicy"), den, "does not read"},
		{"PUT with a body needs Content-Type", "s3all", func() req { r := up("PUT", "/b/a.csv"); r.body = s("data"); return r }(), bd, "Content-Type"},
		{"PUT UNSIGNED-PAYLOAD needs none", "s3all", hidden(up("PUT", "/b/a.csv"), "UNSIGNED-PAYLOAD"), ok, "PutObject"},
	}
}

// s3HostCases: bucket and key from path-style and virtual-hosted forms
// alike; allowed_paths matched on /bucket/key.
func s3HostCases() []tcase {
	get := func(u string) req { return s3r("GET", u) }
	return []tcase{
		{"path-style", "r2026", get(pathHost + "/reports-bucket/2026/q3.csv"), ok, "GetObject"},
		{"virtual-hosted", "r2026", get("https://reports-bucket.s3.us-east-1.amazonaws.com/2026/q3.csv"), ok, "GetObject"},
		{"virtual-hosted, upper-case host", "r2026", get("https://REPORTS-BUCKET.S3.US-EAST-1.AMAZONAWS.COM/2026/q3.csv"), ok, "GetObject"},
		{"virtual-hosted, mixed-case host", "r2026", get("https://Reports-Bucket.s3.Us-East-1.amazonaws.com/2026/q3.csv"), ok, "GetObject"},
		{"virtual-hosted other bucket, same key", "r2026", get("https://payroll.s3.us-east-1.amazonaws.com/2026/q3.csv"), den, "path"},
		{"virtual-hosted other bucket, upper case", "r2026", get("https://PAYROLL.S3.US-EAST-1.AMAZONAWS.COM/2026/q3.csv"), den, "path"},
		{"virtual-hosted other bucket, allowed path as key", "r2026", get("https://payroll.s3.us-east-1.amazonaws.com/reports-bucket/2026/q3.csv"), den, "path"},
		{"dotted bucket", "r2026", get("https://reports.bucket.s3.us-east-1.amazonaws.com/2026/q3.csv"), den, "path"},
		{"dotted bucket looking like the allowed one", "r2026", get("https://reports-bucket.evil.s3.us-east-1.amazonaws.com/2026/q3.csv"), den, "path"},
		{"legacy dash region", "r2026", get("https://reports-bucket.s3-us-west-2.amazonaws.com/2026/q3.csv"), ok, "GetObject"},
		{"legacy dash region, path-style", "r2026", get("https://s3-us-west-2.amazonaws.com/reports-bucket/2026/q3.csv"), ok, "GetObject"},
		{"dualstack", "r2026", get("https://reports-bucket.s3.dualstack.us-east-1.amazonaws.com/2026/q3.csv"), ok, "GetObject"},
		{"dualstack path-style", "r2026", get("https://s3.dualstack.us-east-1.amazonaws.com/reports-bucket/2026/q3.csv"), ok, "GetObject"},
		{"external-1", "r2026", get("https://s3-external-1.amazonaws.com/reports-bucket/2026/q3.csv"), ok, "GetObject"},
		{"China", "r2026", get("https://reports-bucket.s3.cn-north-1.amazonaws.com.cn/2026/q3.csv"), ok, "GetObject"},
		{"access point", "r2026", get("https://ap-123456789012.s3-accesspoint.us-east-1.amazonaws.com/2026/q3.csv"), den, "path"},
		{"CNAME host", "r2026", get("https://reports-bucket.example.com/2026/q3.csv"), den, "not an S3 endpoint"},
		{"CNAME host, allowed path", "r2026", get("https://evil.example.com/reports-bucket/2026/q3.csv"), den, "not an S3 endpoint"},
		{"amazonaws host without s3", "r2026", get("https://reports-bucket.ec2.amazonaws.com/2026/q3.csv"), den, "not an S3 endpoint"},
		{"loopback IP", "r2026", get("http://127.0.0.1:9000/reports-bucket/2026/q3.csv"), ok, "GetObject"},
		{"localhost", "r2026", get("http://localhost:9000/reports-bucket/2026/q3.csv"), ok, "GetObject"},
		{"a named endpoint", "minio", get("https://minio.internal:9000/reports-bucket/q3.csv"), ok, "GetObject"},
		{"a named endpoint, other bucket", "minio", get("https://minio.internal:9000/payroll/q3.csv"), den, "path"},
		{"encoded slash in the key", "r2026", get(pathHost + "/reports-bucket/2026%2Fq3.csv"), ok, "GetObject"},
		{"encoded bucket", "r2026", get(pathHost + "/reports%2Dbucket/2026/q3.csv"), ok, "GetObject"},
		{"encoded other bucket", "r2026", get(pathHost + "/reports%2Dbucket2/2026/x"), den, "path"},
		{"double slash is literal", "r2026", get(pathHost + "/reports-bucket//2026/x"), den, "path"},
		{"dot-dot is literal in S3", "r2026", get(pathHost + "/reports-bucket/2026/../../payroll/x"), ok, "GetObject"},
		{"bucket listing outside the prefix", "r2026", get(pathHost + "/reports-bucket/"), den, "path"},
		{"S3 Control FIPS write as PutObject", "s3put", s3r("PUT", "https://123456789012.s3-control-fips.us-east-1.amazonaws.com/v20180820/configuration/publicAccessBlock", "x-amz-account-id", "123456789012"), den, "s3:PutPublicAccessBlock"},
		{"S3 Control dualstack write", "s3put", s3r("PUT", "https://123456789012.s3-control.dualstack.us-east-1.amazonaws.com/v20180820/accesspoint/ap", "x-amz-account-id", "123456789012"), den, "CreateAccessPoint"},
		{"a bucket named like an S3 label", "r2026", get("https://s3-logs.s3.us-east-1.amazonaws.com/reports-bucket/2026/q3.csv"), den, "path"},
		{"a bucket ending in an S3-like label", "r2026", get("https://reports-bucket.s3-archive.s3.us-east-1.amazonaws.com/2026/q3.csv"), den, "path"},
		{"a bucket named like S3 Control", "s3put", s3r("PUT", "https://x.s3-control.s3.us-east-1.amazonaws.com/k", "x-amz-acl", "public-read"), den, "s3:PutObjectAcl"},
		{"an AWS host of an unknown shape", "r2026", get("https://reports-bucket.s3.x.amazonaws.com/2026/q3.csv"), den, "shape"},
		{"an empty bucket segment", "s3all", get(pathHost + "//secret-bucket/k"), den, "empty bucket"},
		{"S3 Control read", "s3all", s3r("GET", "https://123456789012.s3-control.us-east-1.amazonaws.com/v20180820/configuration/publicAccessBlock", "x-amz-account-id", "123456789012"), ok, "GetPublicAccessBlock"},
		{"S3 Control write", "s3all", s3r("PUT", "https://123456789012.s3-control.us-east-1.amazonaws.com/v20180820/configuration/publicAccessBlock", "x-amz-account-id", "123456789012"), den, "s3:PutPublicAccessBlock"},
	}
}

// copyCases: a copy source is an object the role could itself address.
func copyCases() []tcase {
	cp := func(src string, h ...string) req {
		return s3r("PUT", pathHost+"/bucket-a/copy.csv", append([]string{"x-amz-copy-source", src}, h...)...)
	}
	vh := func(host, src string) req { return s3r("PUT", "https://"+host+"/copy.csv", "x-amz-copy-source", src) }
	return []tcase{
		{"same bucket", "copy", cp("/bucket-a/source.csv"), ok, "CopyObject"},
		{"no leading slash", "copy", cp("bucket-a/source.csv"), ok, "CopyObject"},
		{"with a version", "copy", cp("/bucket-a/source.csv?versionId=3"), ok, "CopyObject"},
		{"other bucket", "copy", cp("/other-bucket/payroll.csv"), den, "copy-source"},
		{"encoded other bucket", "copy", cp("/other%2Dbucket/payroll.csv"), den, "copy-source"},
		{"access point ARN", "copy", cp("arn:aws:s3:us-east-1:123456789012:accesspoint/ap/object/k"), den, "ARN"},
		{"encoded ARN", "copy", cp("arn%3Aaws%3As3%3Aus-east-1%3A1%3Aaccesspoint%2Fap%2Fobject%2Fk"), den, "ARN"},
		{"no key", "copy", cp("/bucket-a/"), bd, "copy-source"},
		{"bad encoding", "copy", cp("/bucket-a/%zz"), bd, "copy-source"},
		{"dot-dot is literal", "copy", cp("/bucket-a/../other-bucket/payroll.csv"), ok, "CopyObject"},
		{"range with a source", "copy", cp("/bucket-a/s.csv", "x-amz-copy-source-range", "bytes=0-9"), ok, "CopyObject"},
		{"range without a source", "copy", s3r("PUT", pathHost+"/bucket-a/copy.csv", "x-amz-copy-source-range", "bytes=0-9"), den, "copy-source-range"},
		{"two sources", "copy", withHeader(cp("/bucket-a/a"), "x-amz-copy-source", "/bucket-a/a\n/other/b"), den, "more than one"},
		{"virtual-hosted, same bucket", "copyvh", vh("bucket-a.s3.us-east-1.amazonaws.com", "/bucket-a/s.csv"), ok, "CopyObject"},
		{"virtual-hosted, other bucket", "copyvh", vh("bucket-a.s3.us-east-1.amazonaws.com", "/payroll/secret.csv"), den, "another bucket"},
		{"virtual-hosted upper case, other bucket", "copyvh", vh("BUCKET-A.S3.US-EAST-1.AMAZONAWS.COM", "/payroll/secret.csv"), den, "another bucket"},
		{"virtual-hosted, wildcard host, other bucket by path", "copy", vh("bucket-a.s3.us-east-1.amazonaws.com", "/payroll/bucket-a/x"), den, "copy-source"},
		{"copy needs GetObject", "copyact", cp("/bucket-a/s.csv"), den, "x-amz-copy-source reads"},
		{"copy with s3:*", "s3all", cp("/bucket-a/s.csv"), ok, "CopyObject"},
	}
}

func init() {
	extraS3 = []tcase{
		{"ListDirectoryBuckets", "s3all", s3r("GET", "https://s3express-control.us-east-1.amazonaws.com/"), ok, "ListDirectoryBuckets"},
	}
}

var extraS3 []tcase
