// Chinese (the documents' operators) and English labels.
import { createContext, useContext } from "react";

export type Lang = "zh" | "en";

const TEXT = {
  title: ["vipay 运营后台", "vipay operator console"],
  login: ["登录", "Log in"],
  logout: ["退出登录", "Log out"],
  name: ["用户名", "Name"],
  password: ["密码", "Password"],
  totp: ["动态验证码（如已开启）", "TOTP code (if enabled)"],
  language: ["English", "中文"],
  nav_catalog: ["会员价格 (001)", "VIP catalog (001)"],
  nav_audit: ["审计日志", "Audit log"],
  role: ["角色", "Role"],
  audit_when: ["时间", "When"],
  audit_who: ["操作人", "Who"],
  audit_action: ["操作", "Action"],
  audit_target: ["对象", "Target"],
  audit_reason: ["原因", "Reason"],
  audit_change: ["变更 (前 → 后)", "Change (before → after)"],
  total: ["共", "Total"],
  save: ["保存", "Save"],
  reason: ["原因（必填）", "Reason (required)"],
  preview: ["预览 GET /api/v2/vip/configs", "Preview GET /api/v2/vip/configs"],
  history: ["版本历史", "Version history"],
  rollback: ["回滚到此版本之前", "Roll back to before this change"],
  vip_switch: ["会员开关", "VIP switch"],
  exchange: ["兑换比例（天）", "Exchange rate (days)"],
  level_enable: ["启用", "Enabled"],
  duration: ["时长（月）", "Months"],
  price: ["价格（元）", "Price (yuan)"],
  original: ["原价（元）", "Original (yuan)"],
  iap: ["IAP 商品 ID", "IAP product id"],
  iap_price: ["IAP 价格（元）", "IAP price (yuan)"],
  currency: ["金币价格", "Coin price"],
  saved: ["已保存，版本", "Saved, version"],
  level_name: ["名称", "Name"],
  no_entries: ["暂无记录", "No entries"],
  nav_orders: ["订单", "Orders"],
  order_number: ["订单号", "Order number"],
  user_id: ["用户 ID", "User id"],
  family: ["业务线", "Family"],
  state: ["状态", "State"],
  channel: ["支付渠道", "Channel"],
  amount: ["金额", "Amount"],
  created: ["创建时间", "Created"],
  paid: ["支付时间", "Paid"],
  what: ["内容", "What"],
  search: ["搜索", "Search"],
  any: ["全部", "Any"],
  details: ["详情", "Details"],
  refunds: ["退款记录", "Refunds"],
  membership: ["会员状态", "Membership"],
  expires: ["到期时间", "Expires"],
  refund: ["退款", "Refund"],
  refund_amount: ["退款金额（元，留空 = 全部剩余）", "Refund amount (yuan; empty = all that is left)"],
  refund_done: ["退款已提交", "Refund recorded"],
  close: ["关闭", "Close"],
  sort_hint: ["点击表头排序", "Click a header to sort"],
} as const;

export type Key = keyof typeof TEXT;
export const LangContext = createContext<Lang>("zh");

export function useT() {
  const lang = useContext(LangContext);
  return (key: Key) => TEXT[key][lang === "zh" ? 0 : 1];
}
