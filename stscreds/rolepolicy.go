package stscreds

import (
	"context"
	"errors"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/smithy-go"
)

// IAMRoleClient is the part of *iam.Client the role-policy calls use.
type IAMRoleClient interface {
	GetRole(context.Context, *iam.GetRoleInput, ...func(*iam.Options)) (*iam.GetRoleOutput, error)
	PutRolePolicy(context.Context, *iam.PutRolePolicyInput, ...func(*iam.Options)) (*iam.PutRolePolicyOutput, error)
	GetRolePolicy(context.Context, *iam.GetRolePolicyInput, ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error)
	DeleteRolePolicy(context.Context, *iam.DeleteRolePolicyInput, ...func(*iam.Options)) (*iam.DeleteRolePolicyOutput, error)
}

// RoleName is the name IAM's role calls take: the ARN's last path segment.
func RoleName(roleARN string) string {
	return roleARN[strings.LastIndex(roleARN, "/")+1:]
}

// PermissionsBoundary is the managed policy ARN bounding the role; empty
// when it has none.
func PermissionsBoundary(ctx context.Context, client IAMRoleClient, roleARN string) (string, error) {
	out, err := client.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(RoleName(roleARN))})
	if err != nil {
		return "", WrapError("GetRole", err)
	}
	if out.Role == nil || aws.ToString(out.Role.Arn) != roleARN {
		return "", &Error{Operation: "GetRole", Err: errors.New("IAM answered for another role")}
	}
	if b := out.Role.PermissionsBoundary; b != nil {
		return aws.ToString(b.PermissionsBoundaryArn), nil
	}
	return "", nil
}

// PutRolePolicy writes an inline policy on the role.
func PutRolePolicy(ctx context.Context, client IAMRoleClient, roleARN, name, document string) error {
	_, err := client.PutRolePolicy(ctx, &iam.PutRolePolicyInput{
		RoleName: aws.String(RoleName(roleARN)), PolicyName: aws.String(name), PolicyDocument: aws.String(document),
	})
	if err != nil {
		return WrapError("PutRolePolicy", err)
	}
	return nil
}

// RolePolicy reads an inline policy of the role, decoded; found is false
// when the role has no policy of that name.
func RolePolicy(ctx context.Context, client IAMRoleClient, roleARN, name string) (document string, found bool, err error) {
	out, err := client.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(RoleName(roleARN)), PolicyName: aws.String(name)})
	if isNoSuchEntity(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, WrapError("GetRolePolicy", err)
	}
	// IAM answers the document URL-encoded.
	doc, err := url.PathUnescape(aws.ToString(out.PolicyDocument))
	if err != nil {
		return "", false, &Error{Operation: "GetRolePolicy", Err: errors.New("the policy document is not URL-encoded")}
	}
	return doc, true, nil
}

// DeleteRolePolicy removes an inline policy of the role; one already gone
// is not an error.
func DeleteRolePolicy(ctx context.Context, client IAMRoleClient, roleARN, name string) error {
	_, err := client.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String(RoleName(roleARN)), PolicyName: aws.String(name)})
	if err != nil && !isNoSuchEntity(err) {
		return WrapError("DeleteRolePolicy", err)
	}
	return nil
}

func isNoSuchEntity(err error) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == "NoSuchEntity"
}
