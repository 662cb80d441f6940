package scope

import (
	"net"
	"net/url"
	"strings"
	"sync"

	"github.com/awshmac/vault-plugin-aws-hmac/internal/awsmodel"
)

// isS3 reports the signing names S3's data plane is signed with.
func isS3(service string) bool {
	return service == "s3" || service == "s3express" || service == "s3-object-lambda"
}

// s3Location is where an S3 request goes, path-style or virtual-hosted
// alike.
type s3Location struct {
	bucket, key  string
	vhost        bool   // the bucket is in the host
	hostSuffix   string // the host after the bucket, for a virtual-hosted one
	control      bool   // S3 Control (account-level API), not a bucket
	express      bool   // an S3 Express endpoint
	objectLambda bool   // an S3 Object Lambda endpoint
}

// checkS3 normalises the request to bucket and key, matches allowed_paths
// on /bucket/key, and routes it on S3's model.
func (p *Policy) checkS3(r *Request) (Decision, error) {
	loc, err := p.locateS3(r.URL)
	if err != nil {
		return Decision{Service: r.Service}, err
	}
	if loc.control {
		return p.checkOther(r)
	}
	d := Decision{Service: r.Service, modelled: true}
	if len(p.Paths) > 0 && !MatchGlobs(p.Paths, s3Path(loc.bucket, loc.key)) {
		return d, denied("url: the role may not sign this path (allowed_paths: " + listOrNone(p.Paths) + ")")
	}
	query, err := r.query()
	if err != nil {
		return d, err
	}
	if err := (signals{targets: r.Header.Values("X-Amz-Target")}).refuse(nil); err != nil {
		return d, err
	}
	model := s3Model()
	op, ambiguous := model.Route(awsmodel.RouteRequest{Method: r.Method, Segments: s3Segments(loc), Query: query, HasHeader: hasHeader(r)})
	if op == nil && loc.objectLambda && r.Method == "POST" && loc.key == "WriteGetObjectResponse" {
		// Object Lambda's callback: its host carries a request route, not
		// a bucket (the model's host prefix {RequestRoute}.).
		op = model.Operation("WriteGetObjectResponse")
	}
	if ambiguous && r.Method == "GET" && loc.bucket == "" {
		// GET / lists buckets: directory buckets on S3 Express's control
		// endpoint, general purpose ones anywhere else; the route is one.
		op, ambiguous = model.Operation("ListBuckets"), false
		if loc.express {
			op = model.Operation("ListDirectoryBuckets")
		}
	}
	switch {
	case ambiguous:
		d.unplaced = "action: the request matches more than one S3 operation's route (two subresources)"
	case op == nil:
		d.unplaced = "action: no S3 operation has this method and subresource"
	default:
		d.unplaced = unreadQuery(op, awsmodel.RouteRequest{Query: query})
	}
	if d.unplaced == "" {
		d.Operation, d.Model = op.Name, model.Model
	}
	return d, p.checkS3Headers(r, loc, &d)
}

// s3Model is S3's own model, looked up once.
var s3Model = sync.OnceValue(func() *awsmodel.Service {
	for _, s := range awsmodel.Services("s3") {
		if s.Model == "s3" {
			return s
		}
	}
	panic("awsmodel: no s3 model")
})

func s3Path(bucket, key string) string {
	if bucket == "" {
		return "/"
	}
	return "/" + bucket + "/" + key
}

// s3Segments are the route's segments: none, the bucket, or the bucket
// and the key's.
func s3Segments(loc s3Location) []string {
	switch {
	case loc.bucket == "":
		return []string{""}
	case loc.key == "":
		return []string{loc.bucket}
	}
	return append([]string{loc.bucket}, strings.Split(loc.key, "/")...)
}

// locateS3 reads bucket and key as S3 does. The host is lower-cased once
// and read from the right, as S3 reads it: [bucket.]SERVICE[.dualstack]
// [.REGION].amazonaws.com[.cn], where SERVICE is one of S3's endpoint
// labels; an AWS host of any other shape is refused. A host S3 does not
// serve would be read by S3 as a bucket name (a CNAME), so it is taken as
// a path-style endpoint only when it is a loopback or IP address or the
// role names it exactly in allowed_hosts.
func (p *Policy) locateS3(u *url.URL) (s3Location, error) {
	var loc s3Location
	host := strings.ToLower(u.Hostname())
	path, err := url.PathUnescape(u.EscapedPath())
	if err != nil {
		return loc, bad("url: the path is not validly percent-encoded")
	}
	path = strings.TrimPrefix(path, "/")
	labels := strings.Split(host, ".")
	if rest, ok := awsDomain(labels); ok {
		loc, err := readAWSHost(rest, path)
		if loc.vhost {
			loc.hostSuffix = strings.Join(labels[strings.Count(loc.bucket, ".")+1:], ".")
		}
		return loc, err
	}
	if net.ParseIP(host) != nil || host == "localhost" || namedExactly(p.Hosts, strings.ToLower(u.Host)) || namedExactly(p.Hosts, host) {
		return pathStyle(path)
	}
	return loc, denied("url: the host is not an S3 endpoint, and S3 would read it as a bucket name; name it exactly in allowed_hosts to sign path-style requests to it")
}

// awsDomain strips amazonaws.com or amazonaws.com.cn.
func awsDomain(labels []string) ([]string, bool) {
	n := len(labels)
	switch {
	case n >= 3 && labels[n-3] == "amazonaws" && labels[n-2] == "com" && labels[n-1] == "cn":
		return labels[:n-3], true
	case n >= 2 && labels[n-2] == "amazonaws" && labels[n-1] == "com":
		return labels[:n-2], true
	}
	return nil, false
}

// readAWSHost reads the labels before amazonaws.com from the right: an
// optional region, an optional dualstack, then S3's endpoint label; what
// is left is the bucket.
func readAWSHost(rest []string, path string) (s3Location, error) {
	var loc s3Location
	if n := len(rest); n > 0 && isRegion(rest[n-1]) {
		rest = rest[:n-1]
	}
	if n := len(rest); n > 0 && rest[n-1] == "dualstack" {
		rest = rest[:n-1]
	}
	n := len(rest)
	if n == 0 || !isS3EndpointLabel(rest[n-1]) {
		return loc, denied("url: the host is not an S3 endpoint of a shape the scope can read ([bucket.]s3[.dualstack][.region].amazonaws.com)")
	}
	label := rest[n-1]
	switch {
	case strings.HasPrefix(label, "s3-control"):
		loc.control = true
	case n == 1:
		var err error
		if loc, err = pathStyle(path); err != nil {
			return loc, err
		}
	default:
		loc.vhost, loc.bucket, loc.key = true, strings.Join(rest[:n-1], "."), path
	}
	loc.express, loc.objectLambda = strings.HasPrefix(label, "s3express-"), strings.HasPrefix(label, "s3-object-lambda")
	return loc, nil
}

func pathStyle(path string) (s3Location, error) {
	var loc s3Location
	loc.bucket, loc.key, _ = strings.Cut(path, "/")
	if loc.bucket == "" && loc.key != "" {
		return loc, denied("url: the path starts with an empty bucket segment (//), which the scope cannot place")
	}
	return loc, nil
}

// isS3EndpointLabel: s3, s3-fips, s3-external-1, s3-REGION,
// s3-accesspoint[-fips], s3-object-lambda[-fips], s3-control[-fips],
// s3-outposts, s3express-ZONE, s3express-control.
func isS3EndpointLabel(l string) bool {
	switch l {
	case "s3", "s3-fips", "s3-external-1", "s3-accesspoint", "s3-accesspoint-fips", "s3-object-lambda",
		"s3-object-lambda-fips", "s3-control", "s3-control-fips", "s3-outposts":
		return true
	}
	if zone, ok := strings.CutPrefix(l, "s3express-"); ok {
		return zone != "" && strings.Trim(zone, "abcdefghijklmnopqrstuvwxyz0123456789-") == ""
	}
	region, ok := strings.CutPrefix(l, "s3-")
	return ok && isRegion(region)
}

// isRegion matches an AWS region name: xx(-word)+-N.
func isRegion(l string) bool {
	parts := strings.Split(l, "-")
	if len(parts) < 3 || len(parts[0]) != 2 || !allIn(parts[0], "abcdefghijklmnopqrstuvwxyz") {
		return false
	}
	for _, p := range parts[1 : len(parts)-1] {
		if p == "" || !allIn(p, "abcdefghijklmnopqrstuvwxyz") {
			return false
		}
	}
	last := parts[len(parts)-1]
	return last != "" && allIn(last, "0123456789")
}

func allIn(s, set string) bool { return strings.Trim(s, set) == "" }
