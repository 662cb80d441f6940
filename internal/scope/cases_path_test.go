package scope

// pathCases: non-S3 paths as the service reads them.
func pathCases() []tcase {
	api := func(path string) req {
		return req{url: "https://abc.execute-api.us-east-1.amazonaws.com" + path, service: "execute-api"}
	}
	fn := func(path string) req {
		return req{method: "POST", url: "https://lambda.us-east-1.amazonaws.com" + path, service: "lambda", header: map[string]string{"Content-Type": "application/json"}, body: s("{}")}
	}
	return []tcase{
		{"allowed path", "api", api("/api/v1/users"), ok, "Invoke"},
		{"encoded slash before dot-dot", "api", api("/api/admin/..%2Fv1/users"), den, "encoded"},
		{"dot-dot escapes", "api", api("/api/v1/../admin"), den, "path"},
		{"encoded dot-dot", "api", api("/api/v1/%2E%2E/%2E%2E/admin"), den, "encoded"},
		{"encoded dot-dot, lower case", "api", api("/api/v1/%2e%2e/admin"), den, "encoded"},
		{"encoded slash dot-dot", "api", api("/api/v1%2F..%2F..%2Fadmin"), den, "encoded"},
		{"encoded backslash", "api", api("/api/v1/a%5C..%5Cadmin"), den, "encoded"},
		{"encoded single dot", "api", api("/api/v1/%2E/x"), den, "encoded"},
		{"a semicolon before dot-dot", "api", api("/api/v1/..;/admin"), den, "encoded"},
		{"empty and dot segments", "api", api("/x//../api/v1/users"), den, "mixes empty and dot"},
		{"double slash merged", "api", api("/api//v1/users"), ok, "Invoke"},
		{"double slash out", "api", api("//admin"), den, "path"},
		{"dot segment", "api", api("/api/./v1/users"), ok, "Invoke"},
		{"dot-dot within", "api", api("/api/v1/x/../users"), ok, "Invoke"},
		{"unreserved encoded letter", "api", api("/api/v1/%75sers"), ok, "Invoke"},
		{"encoded letter outside", "api", api("/api/v%32/users"), den, "path"},
		{"encoded space stays encoded", "api", api("/api/v1/a%20b"), ok, "Invoke"},
		{"other path", "api", api("/api/v2/users"), den, "path"},
		{"prefix without a slash", "api", api("/api/v1"), den, "path"},
		{"WebSocket connections", "any", api("/prod/@connections/abc"), ok, "ManageConnections"},
		{"Lambda path allowed", "lambdap", fn("/2015-03-31/functions/f/invocations"), ok, "Invoke"},
		{"Lambda other function", "lambdap", fn("/2015-03-31/functions/g/invocations"), den, "path"},
		{"Lambda dot-dot to another function", "lambdap", fn("/2015-03-31/functions/f/../g/invocations"), den, "path"},
		{"Lambda encoded slash in a label", "lambdap", fn("/2015-03-31/functions/f%2F..%2Fg/invocations"), den, "encoded"},
	}
}

// restCases: REST services choose the operation by method, path and the
// query keys their routes name.
func restCases() []tcase {
	fn := func(method, path string) req {
		return req{method: method, url: "https://lambda.us-east-1.amazonaws.com" + path, service: "lambda", header: map[string]string{"Content-Type": "application/json"}, body: s("{}")}
	}
	return []tcase{
		{"Invoke", "lambda", fn("POST", "/2015-03-31/functions/f/invocations"), ok, "Invoke"},
		{"Invoke with a qualifier", "lambda", fn("POST", "/2015-03-31/functions/f/invocations?Qualifier=live"), ok, "Invoke"},
		{"Invoke with an unread query key", "lambda", fn("POST", "/2015-03-31/functions/f/invocations?Action=DeleteFunction"), den, "does not read"},
		{"GetFunction not listed", "lambda", fn("GET", "/2015-03-31/functions/f"), den, "lambda:GetFunction"},
		{"DeleteFunction not listed", "lambda", fn("DELETE", "/2015-03-31/functions/f"), den, "lambda:DeleteFunction"},
		{"no such route", "lambda", fn("POST", "/2015-03-31/nope"), den, "cannot be determined"},
		{"no such route, nothing limited", "any", fn("POST", "/2015-03-31/nope"), den, "lambda has operations"},
		{"AddPermission", "any", fn("POST", "/2015-03-31/functions/f/policy"), den, "lambda:AddPermission"},
		{"AddPermission under *", "star", fn("POST", "/2015-03-31/functions/f/policy"), den, "lambda:AddPermission"},
		{"GetFunction under *", "star", fn("GET", "/2015-03-31/functions/f"), ok, "GetFunction"},
		{"ListFunctions", "star", fn("GET", "/2015-03-31/functions/"), ok, "ListFunctions"},
		{"Invoke, body without Content-Type", "lambda", withHeader(fn("POST", "/2015-03-31/functions/f/invocations"), "Content-Type", ""), bd, "Content-Type"},
		{"Invoke with a target header", "lambda", withHeader(fn("POST", "/2015-03-31/functions/f/invocations"), "X-Amz-Target", "x.DeleteFunction"), den, "X-Amz-Target"},
		{"CodeArtifact token route needs its domain", "exact", req{method: "POST", url: "https://codeartifact.us-east-1.amazonaws.com/v1/authorization-token", service: "codeartifact"}, den, "cannot be determined"},
		{"a service the models do not know, named", "named", req{url: "https://api.example.com/x", service: "myservice"}, ok, ""},
		{"a service the models do not know, through *", "any", req{url: "https://api.example.com/x", service: "myservice"}, den, "do not know"},
		{"a service the models do not know, with actions", "namedac", req{url: "https://api.example.com/x", service: "myservice"}, den, "limits actions"},
	}
}

// targetCases: service, region, scheme, host, method and presign lifetime.
func targetCases() []tcase {
	gci := "?Action=GetCallerIdentity&Version=2011-06-15"
	sts := func(u string) req { return req{url: u, service: "sts"} }
	presign := func(expires string) req {
		r := s3r("GET", pathHost+"/b/k")
		r.header = map[string]string{"X-Test-Expires": expires}
		return r
	}
	return []tcase{
		{"plain http", "https", sts("http://sts.amazonaws.com/" + gci), den, "https"},
		{"plain http to loopback", "https", sts("http://127.0.0.1:8080/" + gci), ok, "GetCallerIdentity"},
		{"plain http to IPv6 loopback", "https", sts("http://[::1]:8080/" + gci), ok, "GetCallerIdentity"},
		{"plain http to localhost", "https", sts("http://localhost:8080/" + gci), ok, "GetCallerIdentity"},
		{"plain http to a host named like loopback", "https", sts("http://127.0.0.1.example.com/" + gci), den, "https"},
		{"plain http allowed", "http", sts("http://sts.amazonaws.com/" + gci), ok, "GetCallerIdentity"},
		{"another service", "gci", req{url: pathHost + "/b/k", service: "s3"}, den, "service"},
		{"another region", "euw1", sts("https://sts.amazonaws.com/" + gci), den, "region"},
		{"host in another case", "stshost", sts("https://STS.AMAZONAWS.COM/" + gci), ok, "GetCallerIdentity"},
		{"another host", "stshost", sts("https://sts.evil.com/" + gci), den, "host"},
		{"host with a port", "stshost", sts("https://sts.amazonaws.com:8443/" + gci), ok, "GetCallerIdentity"},
		{"subdomain", "subdomains", sts("https://sts.amazonaws.com/" + gci), ok, "GetCallerIdentity"},
		{"the bare domain", "subdomains", sts("https://amazonaws.com/" + gci), den, "host"},
		{"a suffix look-alike", "subdomains", sts("https://evilamazonaws.com/" + gci), den, "host"},
		{"method not allowed", "upload", s3r("GET", pathHost+"/reports-bucket/a"), den, "method"},
		{"presign within the limit", "presign", presign("30m"), ok, "GetObject"},
		{"presign beyond the limit", "presign", presign("2h"), den, "max_presign_expires"},
	}
}
