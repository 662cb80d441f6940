package scope

import "strings"

const (
	ok  = 200
	bd  = 400
	den = 403
)

func hidden(r req, hash string) req { r.body, r.hash = nil, hash; return r }

func withHeader(r req, kv ...string) req {
	h := map[string]string{}
	for k, v := range r.header {
		h[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(h, kv[i])
		} else {
			h[kv[i]] = kv[i+1]
		}
	}
	r.header = h
	return r
}

var assumeForm = "Action=AssumeRole&RoleArn=arn:aws:iam::1:role/admin&RoleSessionName=x&Version=2011-06-15"

// queryCases: the Query protocol reads Action from the query and the whole
// form body, whatever the Content-Type; X-Amz-Target means nothing to it.
func queryCases() []tcase {
	gciQ := "Action=GetCallerIdentity&Version=2011-06-15"
	return []tcase{
		{"GetCallerIdentity in a form", "gci", stsForm(gciQ), ok, "GetCallerIdentity"},
		{"GetCallerIdentity in the query", "gci", stsQuery(gciQ), ok, "GetCallerIdentity"},
		{"AssumeRole in a form", "gci", stsForm(assumeForm), den, "sts:AssumeRole mints"},
		{"AssumeRole in the query", "gci", stsQuery(assumeForm), den, "sts:AssumeRole"},
		{"GetSessionToken", "gci", stsForm("Action=GetSessionToken"), den, "sts:GetSessionToken"},
		{"GetFederationToken", "gci", stsQuery("Action=GetFederationToken&Name=x"), den, "sts:GetFederationToken"},
		{"AssumeRole form with a target naming GetCallerIdentity", "gci", withHeader(stsForm(assumeForm), "X-Amz-Target", "AWSSecurityTokenServiceV20110615.GetCallerIdentity"), den, "more than one"},
		{"AssumeRole hidden behind payload_hash with a target", "gci", withHeader(hidden(stsForm(assumeForm), sha(assumeForm)), "X-Amz-Target", "AWSSecurityTokenServiceV20110615.GetCallerIdentity"), den, "X-Amz-Target"},
		{"query action, form hidden behind payload_hash", "gci", hidden(stsForm(assumeForm), sha(assumeForm)).withURL("https://sts.amazonaws.com/?" + gciQ), den, "payload_hash"},
		{"query action, UNSIGNED-PAYLOAD", "gci", hidden(stsForm(assumeForm), "UNSIGNED-PAYLOAD").withURL("https://sts.amazonaws.com/?" + gciQ), den, "payload_hash"},
		{"query action, empty body by hash", "gci", hidden(stsForm(""), sha("")).withURL("https://sts.amazonaws.com/?" + gciQ), ok, "GetCallerIdentity"},
		{"no action, body hidden", "gci", hidden(stsForm(assumeForm), sha(assumeForm)), den, "cannot be determined"},
		{"stray semicolon, untyped body", "gci", withHeader(stsForm("Version=2011-06-15;Action=AssumeRole"), "Content-Type", "").withURL("https://sts.amazonaws.com/?" + gciQ), den, "not a valid form"},
		{"stray semicolon, text/plain body", "gci", withHeader(stsForm("Version=2011-06-15;Action=AssumeRole"), "Content-Type", "text/plain").withURL("https://sts.amazonaws.com/?" + gciQ), den, "not a valid form"},
		{"stray semicolon, form body", "gci", stsForm("Version=2011-06-15;Action=AssumeRole").withURL("https://sts.amazonaws.com/?" + gciQ), bd, "body: the form is malformed"},
		{"bad escape in a form", "gci", stsForm("Action=%zz"), bd, "body"},
		{"AssumeRole in a text/plain body beside the query's action", "gci", withHeader(stsForm(assumeForm), "Content-Type", "text/plain").withURL("https://sts.amazonaws.com/?" + gciQ), den, "more than one"},
		{"AssumeRole in a JSON-typed body", "gci", withHeader(stsForm(assumeForm), "Content-Type", "application/json"), den, "x-www-form-urlencoded"},
		{"AssumeRole in an untyped body", "gci", withHeader(stsForm(assumeForm), "Content-Type", ""), den, "x-www-form-urlencoded"},
		{"Action twice in the query", "gci", stsQuery(gciQ + "&Action=AssumeRole"), den, "more than one"},
		{"Action twice in the form", "gci", stsForm(gciQ + "&Action=AssumeRole"), den, "more than one"},
		{"Action in query and form", "gci", stsForm(assumeForm).withURL("https://sts.amazonaws.com/?" + gciQ), den, "more than one"},
		{"Action in query and form, same", "gci", stsForm(gciQ).withURL("https://sts.amazonaws.com/?" + gciQ), den, "more than one"},
		{"action in lower case", "gci", stsQuery("action=AssumeRole"), den, "another case"},
		{"ACTION in upper case", "gci", stsQuery("ACTION=AssumeRole"), den, "another case"},
		{"Action and action", "gci", stsQuery(gciQ + "&action=AssumeRole"), den, "another case"},
		{"action value in lower case, allowed", "gci", stsQuery("Action=getcalleridentity"), ok, "GetCallerIdentity"},
		{"action value in lower case, refused", "gci", stsQuery("Action=assumerole"), den, "sts:AssumeRole"},
		{"empty action", "gci", stsQuery("Action="), den, "empty"},
		{"no action at all", "gci", stsQuery("Version=2011-06-15"), den, "cannot be determined"},
		{"an action STS does not have", "gci", stsQuery("Action=CreateAccessKey"), den, "names no operation"},
		{"encoded action name", "gci", stsQuery("Action=Assume%52ole"), den, "sts:AssumeRole"},
		{"role without actions", "stsany", stsQuery(gciQ), den, "mints credentials"},
		{"role without actions, AssumeRole", "stsany", stsForm(assumeForm), den, "mints credentials"},
	}
}

// otherQueryCases: IAM, EC2, CloudWatch, SQS and Redshift by the same
// rules, and the newer protocols' markers refused.
func otherQueryCases() []tcase {
	gciQ := "Action=GetCallerIdentity&Version=2011-06-15"
	return []tcase{
		{"IAM CreateAccessKey beside ListUsers", "iamlist", iamForm("Action=CreateAccessKey&Version=2010-05-08"), den, "iam:CreateAccessKey"},
		{"IAM ListUsers", "iamlist", iamForm("Action=ListUsers&Version=2010-05-08"), ok, "ListUsers"},
		{"IAM hidden CreateAccessKey with a ListUsers target", "iamlist", withHeader(hidden(iamForm("Action=CreateAccessKey"), sha("Action=CreateAccessKey")), "X-Amz-Target", "AWSIdentityManagementV20100508.ListUsers"), den, "X-Amz-Target"},
		{"IAM ListUsers query, body hidden", "iamlist", hidden(iamForm("Action=CreateAccessKey"), sha("Action=CreateAccessKey")).withURL("https://iam.amazonaws.com/?Action=ListUsers"), den, "payload_hash"},
		{"IAM text/plain CreateAccessKey beside ListUsers", "iamlist", withHeader(iamForm("Action=CreateAccessKey"), "Content-Type", "text/plain").withURL("https://iam.amazonaws.com/?Action=ListUsers"), den, "more than one"},
		{"IAM ListUsers in a text/plain body", "iamlist", withHeader(iamForm("Action=ListUsers"), "Content-Type", "text/plain"), den, "x-www-form-urlencoded"},
		{"IAM form without Content-Type", "iamlist", withHeader(iamForm("Action=ListUsers"), "Content-Type", ""), den, "x-www-form-urlencoded"},
		{"Action with a trailing space", "gci", stsQuery(gciQ + "&Action+=AssumeRole"), den, "another case"},
		{"Action behind a byte-order mark", "gci", stsForm("\ufeffAction=AssumeRole").withURL("https://sts.amazonaws.com/?" + gciQ), den, "another case"},
		{"X-Amzn-Target", "gci", withHeader(stsQuery(gciQ), "X-Amzn-Target", "AWSSecurityTokenServiceV20110615.AssumeRole"), den, "X-Amzn-Target"},
		{"Smithy-Protocol", "gci", withHeader(stsQuery(gciQ), "Smithy-Protocol", "rpc-v2-cbor"), den, "Smithy-Protocol"},
		{"RPC v2 path with a query Action", "any", req{method: "POST", url: "https://monitoring.eu-west-3.amazonaws.com/service/GraniteServiceVersion20100801/operation/PutMetricAlarm?Action=ListMetrics", service: "monitoring", header: map[string]string{"Content-Type": "application/cbor"}, body: s("\xa0")}, ok, ""},
		{"RPC v2 path, limited", "cwlist", req{method: "POST", url: "https://monitoring.eu-west-3.amazonaws.com/service/GraniteServiceVersion20100801/operation/PutMetricAlarm?Action=ListMetrics", service: "monitoring", header: map[string]string{"Content-Type": "application/cbor"}, body: s("\xa0")}, den, "goes to /"},
		{"Query GET to another path", "gci", stsQuery(gciQ).withURL("https://sts.amazonaws.com/x?" + gciQ), den, "goes to /"},
		{"SQS Query with a JSON Content-Type", "sqs", req{method: "POST", url: "https://sqs.us-east-1.amazonaws.com/?Action=SendMessage", service: "sqs", header: map[string]string{"Content-Type": "application/x-amz-json-1.0"}, body: s("{}")}, den, "x-www-form-urlencoded"},
		{"SQS Query GET without a Content-Type", "sqs", req{url: "https://sqs.us-east-1.amazonaws.com/123456789012/q?Action=SendMessage&MessageBody=x", service: "sqs"}, den, "x-www-form-urlencoded"},
		{"SQS Query on the queue path", "sqs", req{method: "POST", url: "https://sqs.us-east-1.amazonaws.com/123456789012/q", service: "sqs", header: map[string]string{"Content-Type": formCT}, body: s("Action=SendMessage&MessageBody=x")}, ok, "SendMessage"},
		{"JSON target to another path", "ddb", jsonReq("dynamodb.us-east-1.amazonaws.com", "dynamodb", "DynamoDB_20120810.GetItem", "{}").withURL("https://dynamodb.us-east-1.amazonaws.com/service/x/operation/DeleteTable"), den, "goes to /"},
		{"presigned JSON target", "ddb", withHeader(jsonReq("dynamodb.us-east-1.amazonaws.com", "dynamodb", "DynamoDB_20120810.GetItem", "{}"), "X-Test-Expires", "5m"), den, "presign"},
		{"IAM CreateLoginProfile", "iamlist", iamForm("Action=CreateLoginProfile&UserName=x"), den, "iam:CreateLoginProfile"},
		{"IAM PutUserPolicy", "iamlist", iamForm("Action=PutUserPolicy"), den, "iam:PutUserPolicy"},
		{"EC2 DescribeInstances", "any", req{url: "https://ec2.us-east-1.amazonaws.com/?Action=DescribeInstances", service: "ec2"}, ok, "DescribeInstances"},
		{"EC2 GetPasswordData", "any", req{url: "https://ec2.us-east-1.amazonaws.com/?Action=GetPasswordData&InstanceId=i-1", service: "ec2"}, den, "ec2:GetPasswordData"},
		{"EC2 hidden body", "any", hidden(req{method: "POST", url: "https://ec2.us-east-1.amazonaws.com/?Action=DescribeInstances", service: "ec2", header: map[string]string{"Content-Type": formCT}}, sha("Action=GetPasswordData")), den, "payload_hash"},
		{"CloudWatch hidden body, nothing limited", "any", hidden(req{method: "POST", url: "https://monitoring.us-east-1.amazonaws.com/?Action=ListMetrics", service: "monitoring", header: map[string]string{"Content-Type": formCT}}, sha("x")), ok, ""},
		{"CloudWatch ListMetrics", "any", req{url: "https://monitoring.us-east-1.amazonaws.com/?Action=ListMetrics", service: "monitoring"}, ok, "ListMetrics"},
		{"a gzip body beside the query's action", "gci", withHeader(stsForm("\x1f\x8b compressed"), "Content-Encoding", "gzip").withURL("https://sts.amazonaws.com/?" + gciQ), den, "Content-Encoding"},
		{"a gzip body, nothing limited", "any", withHeader(req{method: "POST", url: "https://monitoring.us-east-1.amazonaws.com/?Action=PutMetricData", service: "monitoring", header: map[string]string{"Content-Type": formCT}, body: s("x")}, "Content-Encoding", "gzip"), ok, ""},
		{"Content-Encoding identity", "gci", withHeader(stsForm(gciQ), "Content-Encoding", "identity"), ok, "GetCallerIdentity"},
		{"Redshift GetClusterCredentials", "any", req{url: "https://redshift.us-east-1.amazonaws.com/?Action=GetClusterCredentials", service: "redshift"}, den, "redshift:GetClusterCredentials"},
	}
}

func (r req) withURL(u string) req { r.url = u; return r }

// jsonCases: X-Amz-Target must name an operation of the service's model.
func jsonCases() []tcase {
	ddb := func(target string) req {
		return jsonReq("dynamodb.us-east-1.amazonaws.com", "dynamodb", target, `{"TableName":"t"}`)
	}
	sqs := func(target string) req {
		return jsonReq("sqs.us-east-1.amazonaws.com", "sqs", target, `{"QueueUrl":"q"}`)
	}
	sqsForm := func(body string) req {
		return req{method: "POST", url: "https://sqs.us-east-1.amazonaws.com/", service: "sqs", header: map[string]string{"Content-Type": formCT}, body: s(body)}
	}
	return []tcase{
		{"GetItem", "ddb", ddb("DynamoDB_20120810.GetItem"), ok, "GetItem"},
		{"Query", "ddb", ddb("DynamoDB_20120810.Query"), ok, "Query"},
		{"DeleteTable", "ddb", ddb("DynamoDB_20120810.DeleteTable"), den, "dynamodb:DeleteTable"},
		{"PutItem", "ddb", ddb("DynamoDB_20120810.PutItem"), den, "dynamodb:PutItem"},
		{"glob GetResourcePolicy", "ddbglob", ddb("DynamoDB_20120810.GetResourcePolicy"), ok, "GetResourcePolicy"},
		{"glob refuses DeleteItem", "ddbglob", ddb("DynamoDB_20120810.DeleteItem"), den, "dynamodb:DeleteItem"},
		{"streams operation under the tables prefix", "ddbglob", ddb("DynamoDB_20120810.GetRecords"), den, "names no operation"},
		{"streams prefix on the tables host", "ddbglob", ddb("DynamoDBStreams_20120810.GetRecords"), den, "names no operation"},
		{"streams on its own host", "ddbglob", jsonReq("streams.dynamodb.us-east-1.amazonaws.com", "dynamodb", "DynamoDBStreams_20120810.GetRecords", "{}"), ok, "GetRecords"},
		{"two targets", "ddb", withHeader(ddb(""), "X-Amz-Target", "DynamoDB_20120810.GetItem\nDynamoDB_20120810.DeleteTable"), den, "more than one"},
		{"target and Action", "ddb", ddb("DynamoDB_20120810.GetItem").withURL("https://dynamodb.us-east-1.amazonaws.com/?Action=DeleteTable"), den, "more than one"},
		{"no target", "ddb", withHeader(ddb(""), "X-Amz-Target", ""), den, "cannot be determined"},
		{"target, body hidden", "ddb", hidden(ddb("DynamoDB_20120810.GetItem"), sha("{}")), ok, "GetItem"},
		{"target in lower case", "ddb", ddb("dynamodb_20120810.getitem"), den, "names no operation"},
		{"target without a prefix", "ddb", ddb("GetItem"), den, "names no operation"},
		{"target with an empty operation", "ddb", ddb("DynamoDB_20120810."), den, "names no operation"},
		{"SQS JSON SendMessage", "sqs", sqs("AmazonSQS.SendMessage"), ok, "SendMessage"},
		{"SQS Query SendMessage", "sqs", sqsForm("Action=SendMessage&QueueUrl=q"), ok, "SendMessage"},
		{"SQS Query DeleteQueue", "sqs", sqsForm("Action=DeleteQueue&QueueUrl=q"), den, "sqs:DeleteQueue"},
		{"SQS target and a form Action", "sqs", withHeader(sqsForm("Action=DeleteQueue"), "X-Amz-Target", "AmazonSQS.SendMessage"), den, "more than one"},
		{"SQS target with a form Content-Type", "sqs", withHeader(sqs("AmazonSQS.SendMessage"), "Content-Type", formCT), den, "x-amz-json"},
		{"SQS target, body hidden, JSON type", "sqs", hidden(sqs("AmazonSQS.SendMessage"), sha("{}")), ok, "SendMessage"},
		{"SQS Query action, body hidden", "sqs", hidden(sqsForm(""), sha("Action=DeleteQueue")).withURL("https://sqs.us-east-1.amazonaws.com/?Action=SendMessage"), den, "payload_hash"},
		{"SQS AddPermission", "any", sqs("AmazonSQS.AddPermission"), den, "sqs:AddPermission"},
		{"KMS Decrypt", "any", jsonReq("kms.us-east-1.amazonaws.com", "kms", "TrentService.Decrypt", "{}"), ok, "Decrypt"},
		{"KMS CreateGrant", "any", jsonReq("kms.us-east-1.amazonaws.com", "kms", "TrentService.CreateGrant", "{}"), den, "kms:CreateGrant"},
		{"KMS CreateGrant under *", "star", jsonReq("kms.us-east-1.amazonaws.com", "kms", "TrentService.CreateGrant", "{}"), den, "kms:CreateGrant"},
		{"KMS Decrypt under *", "star", jsonReq("kms.us-east-1.amazonaws.com", "kms", "TrentService.Decrypt", "{}"), ok, "Decrypt"},
		{"KMS with another service's prefix", "any", jsonReq("kms.us-east-1.amazonaws.com", "kms", "DynamoDB_20120810.GetItem", "{}"), den, "names no operation"},
		{"KMS unknown target under *", "star", jsonReq("kms.us-east-1.amazonaws.com", "kms", "DynamoDB_20120810.GetItem", "{}"), den, "names no operation"},
	}
}

func sha(body string) string {
	r := req{body: s(body)}.build()
	return r.PayloadHash
}

var _ = strings.Contains
