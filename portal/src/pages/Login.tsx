/** Log in with a user name and password (a session token for this tab). */
import { LockOutlined, UserOutlined } from "@ant-design/icons";
import { Button, Card, Collapse, Flex, Form, Input, Typography } from "antd";
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { Navigate, useNavigate, useSearchParams } from "react-router-dom";

import type { Locale } from "../api/types";
import { useAuth } from "../auth/AuthContext";
import type { LoginForm } from "../auth/AuthContext";
import { ErrorAlert } from "../components/ErrorAlert";
import { setLocale } from "../i18n";
import { LanguageSwitch } from "../layout/AppLayout";

/** Only paths of this app: `next` comes from the URL, which anyone can write. */
function safeNext(next: string | null): string {
  return next && next.startsWith("/") && !next.startsWith("//") ? next : "/";
}

export default function Login() {
  const { t } = useTranslation();
  const { principal, login } = useAuth();
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [localeChosen, setLocaleChosen] = useState(false);

  if (principal) return <Navigate to={safeNext(params.get("next"))} replace />;

  const onFinish = async (form: LoginForm) => {
    setBusy(true);
    setError(null);
    try {
      await login(form, localeChosen);
      navigate(safeNext(params.get("next")), { replace: true });
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };

  const onLocale = (lng: Locale) => {
    setLocaleChosen(true);
    void setLocale(lng);
  };

  return (
    <Flex
      vertical
      align="center"
      justify="center"
      style={{ minHeight: "100vh", background: "linear-gradient(160deg, #001529 0%, #0b3a6e 100%)" }}
    >
      <Card style={{ width: 400 }} data-testid="login-card">
        <Flex justify="space-between" align="center" style={{ marginBottom: 8 }}>
          <Flex align="center" gap={8}>
            <img src="/favicon.svg" alt="" width={28} height={28} />
            <Typography.Title level={3} style={{ margin: 0 }}>
              Tessera
            </Typography.Title>
          </Flex>
          <LanguageSwitch onChange={onLocale} />
        </Flex>
        <Typography.Paragraph type="secondary">{t("auth:tagline")}</Typography.Paragraph>
        <ErrorAlert error={error} style={{ marginBottom: 16 }} />
        <Form<LoginForm>
          layout="vertical"
          onFinish={onFinish}
          initialValues={{ domain: "default" }}
          requiredMark={false}
        >
          <Form.Item
            name="user"
            label={t("auth:user")}
            rules={[{ required: true, message: t("auth:userRequired") }]}
          >
            <Input prefix={<UserOutlined />} autoComplete="username" autoFocus />
          </Form.Item>
          <Form.Item
            name="password"
            label={t("auth:password")}
            rules={[{ required: true, message: t("auth:passwordRequired") }]}
          >
            <Input.Password prefix={<LockOutlined />} autoComplete="current-password" />
          </Form.Item>
          <Collapse
            ghost
            size="small"
            style={{ marginBottom: 16 }}
            items={[
              {
                key: "more",
                label: t("auth:more"),
                forceRender: true,
                children: (
                  <>
                    <Form.Item name="domain" label={t("auth:domain")}>
                      <Input />
                    </Form.Item>
                    <Form.Item name="project" label={t("auth:project")} extra={t("auth:projectHelp")}>
                      <Input />
                    </Form.Item>
                  </>
                ),
              },
            ]}
          />
          <Button type="primary" htmlType="submit" block loading={busy} data-testid="login-submit">
            {t("auth:submit")}
          </Button>
        </Form>
      </Card>
    </Flex>
  );
}
