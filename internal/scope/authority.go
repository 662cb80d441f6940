package scope

import (
	"strings"
	"sync"
)

// authorityServices are services whose every request carries authority
// (credentials, identity, access policy): a role signs them only when it
// lists its actions, and never through a wildcard.
var authorityServices = []string{"sts", "iam", "sso", "sso-oauth", "awsssoportal", "cognito-identity", "signin", "rolesanywhere"}

// authorityOps are the operations that mint credentials or tokens, or
// change who may do what. A role signs them only when allowed_actions lists
// them exactly: no glob, "*" included, ever reaches them. Entries are
// signing-name:Operation; a trailing * covers a family.
var authorityOps = []string{
	// IAM (keys, logins, policies, trust), single sign-on, sign-in, Roles
	// Anywhere and Cognito identity pools are authorityServices: all of it.
	"cognito-idp:Admin*", "cognito-idp:InitiateAuth", "cognito-idp:RespondToAuthChallenge",
	"cognito-idp:GetTokensFromRefreshToken", "cognito-idp:CreateUserPoolClient", "cognito-idp:UpdateUserPoolClient",
	// Tokens and sessions minted by other services.
	"s3:CreateSession", "s3express:CreateSession",
	"ecr:GetAuthorizationToken", "ecr-public:GetAuthorizationToken", "codeartifact:GetAuthorizationToken",
	"redshift:GetClusterCredentials", "redshift:GetClusterCredentialsWithIAM", "redshift-serverless:GetCredentials",
	"ec2-instance-connect:SendSSHPublicKey", "ec2-instance-connect:SendSerialConsoleSSHPublicKey",
	"ssm:StartSession", "ssm:ResumeSession", "ssm:SendCommand",
	"connect:GetFederationToken", "lightsail:GetInstanceAccessDetails", "lightsail:DownloadDefaultKeyPair",
	"lightsail:CreateKeyPair", "lightsail:GetRelationalDatabaseMasterUserPassword", "gamelift:GetInstanceAccess",
	"lakeformation:GetTemporaryGlueTableCredentials", "lakeformation:GetTemporaryGluePartitionCredentials",
	"lakeformation:GetDataAccess", "datazone:GetEnvironmentCredentials", "emr-containers:GetManagedEndpointSessionCredentials",
	"sagemaker:CreatePresignedDomainUrl", "sagemaker:CreatePresignedNotebookInstanceUrl", "appstream:CreateStreamingURL",
	"ec2:GetPasswordData", "ec2:CreateKeyPair", "iotsecuredtunneling:OpenTunnel", "iotsecuredtunneling:RotateTunnelAccessToken",
	"secretsmanager:PutResourcePolicy", "kms:CreateGrant", "kms:PutKeyPolicy", "lambda:AddPermission", "lambda:CreateFunctionUrlConfig",
	"sqs:AddPermission", "sqs:SetQueueAttributes", "sns:AddPermission", "sns:SetTopicAttributes", "organizations:*",
	// Resource policies and sharing: who else may use a resource.
	"ecr:SetRepositoryPolicy", "ecr:PutRegistryPolicy", "ecr-public:SetRepositoryPolicy", "ecr-public:PutRegistryCatalogData",
	"codeartifact:PutRepositoryPermissionsPolicy", "codeartifact:PutDomainPermissionsPolicy", "dynamodb:PutResourcePolicy",
	"logs:PutResourcePolicy", "events:PutPermission", "glue:PutResourcePolicy", "kinesis:PutResourcePolicy",
	"elasticfilesystem:PutFileSystemPolicy", "backup:PutBackupVaultAccessPolicy", "glacier:SetVaultAccessPolicy",
	"ses:PutIdentityPolicy", "lambda:AddLayerVersionPermission", "lambda:UpdateFunctionUrlConfig", "ram:CreateResourceShare",
	"ram:AssociateResourceShare", "ec2:ModifySnapshotAttribute", "ec2:ModifyImageAttribute", "rds:ModifyDBSnapshotAttribute",
	"rds:ModifyDBClusterSnapshotAttribute", "eks:CreateAccessEntry", "eks:AssociateAccessPolicy", "identitystore:CreateGroupMembership",
	// Shells and secrets.
	"ecs:ExecuteCommand", "ssm:StartAutomationExecution", "ssm:CreateAssociation", "apigateway:GetApiKey",
	"secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue",
	// IAM-auth tokens: a presigned request that is a database or cluster login.
	"rds-db:connect", "dsql:DbConnect", "dsql:DbConnectAdmin", "elasticache:connect", "memorydb:connect",
	"kafka-cluster:Connect", "neptune-db:connect",
	// S3 access and bucket configuration: who may read, write or replicate.
	"s3:PutBucket*", "s3:DeleteBucket*", "s3:PutObjectAcl", "s3:PutPublicAccessBlock", "s3:DeletePublicAccessBlock",
	"s3:PutObjectLockConfiguration", "s3:CreateBucket*", "s3:PutAccessPoint*", "s3:CreateAccessPoint*",
	"s3:DeleteAccessPoint*", "s3:PutAccessGrants*", "s3:CreateAccessGrant*", "s3:PutMultiRegionAccessPointPolicy",
	"s3:GetDataAccess", "s3express:*",
}

// tokenOps are operations of IAM-auth token presigns that no service model
// describes: a presigned request whose Action names them.
var tokenOps = map[string][]string{
	"rds-db":        {"connect"},
	"dsql":          {"DbConnect", "DbConnectAdmin"},
	"elasticache":   {"connect"},
	"memorydb":      {"connect"},
	"kafka-cluster": {"kafka-cluster:Connect"},
}

// IsAuthority reports whether service:operation mints credentials or tokens
// or changes access, so that only an exact listing may allow it.
func IsAuthority(service, operation string) bool {
	for _, a := range authorityIndex()[service] {
		if prefix, ok := strings.CutSuffix(a, "*"); ok {
			if strings.HasPrefix(operation, prefix) {
				return true
			}
		} else if a == operation {
			return true
		}
	}
	return isAuthorityService(service)
}

// authorityIndex is authorityOps by service: operation patterns.
var authorityIndex = sync.OnceValue(func() map[string][]string {
	out := map[string][]string{}
	for _, a := range authorityOps {
		service, op, _ := strings.Cut(a, ":")
		out[service] = append(out[service], op)
	}
	return out
})

func isAuthorityService(service string) bool {
	for _, s := range authorityServices {
		if s == service {
			return true
		}
	}
	return false
}

// hasAuthorityOps reports whether any operation of the service is
// authority: a request of it the scope cannot place might be one.
func hasAuthorityOps(service string) bool { return len(authorityIndex()[service]) > 0 }
